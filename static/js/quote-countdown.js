// Counts down how long a quote holds ("97 s"), then says it has expired: any element with
// data-countdown-to="<ISO 8601 time>". A help only: the section holding it asks the server for
// a new quote when it expires (hx-trigger "load delay:..."), and the server decides what a
// quote is worth. Scans the document every second, so it also follows sections htmx swapped in.
(function () {
  "use strict";
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown-to]").forEach(function (el) {
      var until = Date.parse(el.getAttribute("data-countdown-to"));
      if (isNaN(until)) return;
      var left = Math.round((until - now) / 1000);
      var text = left > 0 ? left + " s" : "expired; asking for a new quote";
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("expired", left <= 0);
    });
  }
  tick();
  window.setInterval(tick, 1000);
})();

// Counts a payout reference's characters as they are typed ("12 of 18 characters"), and says
// when there are too many. A help only: the server checks the reference again (the rule).
// Any element with data-count-for="<input id>" counts that input, whose data-count-limit is
// the limit. Delegated from the document, so it also works on pages htmx swapped in.
(function () {
  "use strict";
  function update(input) {
    var counter = document.querySelector('[data-count-for="' + input.id + '"]');
    if (!counter) return;
    var limit = parseInt(input.getAttribute("data-count-limit"), 10);
    var used = input.value.length;
    counter.textContent = used + " of " + limit + " characters" +
      (used > limit ? ": " + (used - limit) + " too many" : "");
    counter.classList.toggle("error", used > limit);
  }
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target && target.hasAttribute && target.hasAttribute("data-count-limit")) update(target);
  });
  document.querySelectorAll("[data-count-limit]").forEach(update);
})();

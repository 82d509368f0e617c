// The export panel sends the filters applied on screen. After an htmx filter swap the page's
// address (hx-push-url) holds them, not the panel rendered with the page: copy it on submit.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-export-form")) return;
  const filters = form.querySelector('input[name="filters"]');
  if (filters) filters.value = window.location.search.replace(/^\?/, "");
});

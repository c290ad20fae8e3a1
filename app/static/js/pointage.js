/* Pointage without reloading the page: each Pointer / Dépointer button of the lines' form is sent with
   fetch (to its own formaction) and the row and the summary box are updated. Without JavaScript the
   same buttons post the form to their line's address, with a full page load. */
(function () {
  "use strict";
  const table = document.querySelector("table.pointage");
  if (!table) return;
  function updateSummary(summary) {
    if (!summary) return;
    Object.keys(summary).forEach(function (key) {
      const target = document.querySelector('[data-summary="' + key + '"]');
      if (target && summary[key] !== null) target.textContent = summary[key];
    });
    const difference = document.querySelector('[data-summary="difference"]');
    if (difference && summary.difference !== null) {
      difference.classList.toggle("text-success", summary.reconciled);
      difference.classList.toggle("text-danger", !summary.reconciled);
    }
    const note = document.getElementById("reconciled-note");
    if (note) note.hidden = !summary.reconciled;
  }
  const form = table.closest("form");
  if (!form) return;
  form.addEventListener("submit", function (event) {
    const button = event.submitter;
    if (!button || !button.closest("td.line-action")) return;
    event.preventDefault();
    const unclear = button.dataset.kind === "unclear";
    if (unclear && !window.confirm("Annuler le pointage de cette ligne ?")) return;
    const data = new FormData(form);
    if (unclear) data.set("confirme", "oui");
    const address = button.formAction;
    button.disabled = true;
    fetch(address, {method: "POST", body: data, headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (result) {
        const row = document.getElementById("ligne-" + result.line_id);
        row.querySelector(".cleared").textContent = result.cleared_on || "";
        const cleared = Boolean(result.cleared_on);
        button.dataset.kind = cleared ? "unclear" : "clear";
        button.formAction = cleared ? address.replace(/\/pointer$/, "/depointer") : address.replace(/\/depointer$/, "/pointer");
        button.firstChild.textContent = cleared ? "Dépointer" : "Pointer";
        button.classList.toggle("btn-outline-secondary", cleared);
        button.classList.toggle("btn-outline-primary", !cleared);
        updateSummary(result.summary);
      })
      .catch(function () { form.action = address; form.submit(); })
      .finally(function () { button.disabled = false; });
  });
})();

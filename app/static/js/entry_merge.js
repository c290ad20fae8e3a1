/* After a conflict on the edit form (two tabs, or two people, changed the same operation): the focus goes to
   the summary; « Reprendre » beside a box puts back what this tab had typed, then the focus goes to that box.
   Nothing is sent: the user submits the form when the merge is done. Without this script the typed values
   stay shown beside each box, and « Reprendre toute ma saisie » works as a plain form. */
(function () {
  "use strict";
  const summary = document.getElementById("conflit") || document.getElementById("reprise");
  if (summary) summary.focus();
  const form = document.getElementById("entry-form");
  if (!form) return;

  function changed(element) {
    // entry.js listens to these: the remaining amount, the boxes shown per kind and mode follow
    element.dispatchEvent(new Event("input", { bubbles: true }));
    element.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function splitRows() {
    return form.querySelectorAll("#splits tbody tr.split-row");
  }
  function takeSplits(lines) {
    const add = form.querySelector("#add_line");
    while (splitRows().length < lines.length && add) add.click();
    splitRows().forEach(function (row, index) {
      const line = lines[index] || ["", ""];
      const select = row.querySelector("select.split-account");
      const amount = row.querySelector("input.split-amount");
      select.value = line[0];
      amount.value = line[1];
      changed(select);
      changed(amount);
    });
    const first = splitRows()[0];
    return first ? first.querySelector("select") : null;
  }
  function takeKind(value) {
    const radio = form.querySelector('input[name="kind"][value="' + CSS.escape(value) + '"]');
    if (!radio) return null;
    radio.checked = true;
    changed(radio);
    return radio;
  }
  function takeField(id, value) {
    const element = document.getElementById(id);
    if (!element || element.form !== form) return null;
    element.value = value;
    changed(element);
    return element;
  }
  form.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-merge-target]");
    if (!button) return;
    event.preventDefault();
    const target = button.dataset.mergeTarget;
    const value = JSON.parse(button.dataset.mergeValue || '""');
    let field;
    if (target === "splits") field = takeSplits(value);
    else if (target === "kind") field = takeKind(value);
    else field = takeField(target, value);
    if (!field) return;
    button.closest(".conflict-note").classList.add("conflict-taken");
    field.focus();
  });
})();

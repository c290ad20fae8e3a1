/* Guided entry form: live "reste à ventiler" (on the signed total of box 7), add/remove split lines, fields shown per kind,
   one submission only. The form works without this script; the server checks everything again. */
(function () {
  "use strict";
  const form = document.getElementById("entry-form");
  if (!form) return;
  const modes = JSON.parse(form.dataset.modes || "{}");
  // Box 4 against box 6: the domain's explanation of each impossible pair ({kind: {mode: message}}).
  const refusals = JSON.parse(form.dataset.refusals || "{}");
  const CHEQUE_WRITTEN = ["expense", "advance_paid", "refund_paid"];
  // On a fresh form neither box was chosen yet: the one filled first decides, the other follows it.
  let kindChosen = form.dataset.fresh !== "1";
  let modeChosen = form.dataset.fresh !== "1";
  const rest = document.getElementById("rest");
  const restAmount = document.getElementById("rest-amount");
  const tbody = document.querySelector("#splits tbody");

  function parseCents(text) {
    // signed: a contra line of box 7 (a sale net of a refund) is typed with a minus sign
    const raw = (text || "").replace(/[\s\u00a0\u202f€]/g, "").replace("\u2212", "-").replace(",", ".");
    if (!raw) return 0;
    if (!/^-?\d+(\.\d{1,2})?$/.test(raw)) return NaN;
    return Math.round(parseFloat(raw) * 100);
  }
  function format(cents) {
    const sign = cents < 0 ? "-" : "";
    const abs = Math.abs(cents);
    const euros = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    return sign + euros + "," + String(abs % 100).padStart(2, "0") + "\u00a0€";
  }
  function kind() {
    const checked = form.querySelector("input[name=kind]:checked");
    return checked ? checked.value : "";
  }
  function splitsUsed(k) {
    return ["receipt", "expense", "advance_justified", "refund_received", "refund_paid"].indexOf(k) !== -1;
  }
  function update() {
    const k = kind();
    const bank = parseCents(form.bank_amount.value);
    const cash = parseCents(form.cash_amount.value);
    const total = k === "advance_justified" ? null : (bank || 0) + (cash || 0);
    let split = 0;
    tbody.querySelectorAll(".split-amount").forEach(function (input) {
      split += parseCents(input.value) || 0;
    });
    document.getElementById("case7").hidden = !splitsUsed(k);
    document.querySelector(".treasury").hidden = k === "advance_justified";
    const allowed = modes[k] || [];
    const select = form.payment_mode;
    const fixed = allowed.length === 1;  // an internal move or an advance justified: box 4 does not apply
    document.querySelector(".mode-field").hidden = fixed;
    const fixedNote = document.getElementById("mode-fixed");
    fixedNote.hidden = !fixed;
    fixedNote.textContent = fixed ? "4. Mode de paiement : « " + labelOf(allowed[0]) + " », fixé par le type d'opération (case 6)." : "";
    document.querySelector(".cheque-field").hidden = fixed || !(select.value === "cheque" && CHEQUE_WRITTEN.indexOf(k) !== -1);
    document.querySelector(".slip-field").hidden = fixed || select.value !== "remise";
    if (splitsUsed(k) && total !== null && (total || split)) {
      const left = total - split;
      rest.hidden = false;
      restAmount.textContent = format(left);
      rest.classList.toggle("text-success", left === 0);
      rest.classList.toggle("text-danger", left !== 0);
    } else {
      rest.hidden = true;
    }
  }
  function labelOf(mode) {
    const option = Array.from(form.payment_mode.options).find(function (o) { return o.value === mode; });
    return option ? option.text : {interne: "Mouvement interne", regie: "Régie d'avance"}[mode] || mode;
  }
  function kindLabel(k) {
    const input = form.querySelector("input[name=kind][value=\"" + k + "\"]");
    return input && input.labels.length ? input.labels[0].textContent.trim() : k;
  }
  function refusal(k, mode) {
    return (refusals[k] || {})[mode] || "";
  }
  // Say next to the box just changed what happened to the other one, or why the pair cannot be.
  function explain(where, text, isProblem) {
    // The live regions stay in the page, empty; the message is a child, so that it is announced.
    document.querySelectorAll(".mode-kind-note").forEach(function (note) {
      note.replaceChildren();
      if (note.dataset.box !== where || !text) return;
      const message = document.createElement("div");
      message.className = "alert py-2 mb-3 " + (isProblem ? "alert-warning" : "alert-info");
      message.textContent = text;
      note.appendChild(message);
    });
  }
  function modeChanged() {
    modeChosen = true;
    const mode = form.payment_mode.value;
    const k = kind();
    if (!refusal(k, mode)) return explain("4", "");
    const follows = ["receipt", "expense"].find(function (candidate) { return !refusal(candidate, mode); });
    if (!kindChosen && follows) {
      form.querySelector("input[name=kind][value=\"" + follows + "\"]").checked = true;
      return explain("4", "Case 6 : le type d'opération est maintenant « " + kindLabel(follows) + " », qui va avec « " + labelOf(mode) + " ».");
    }
    explain("4", refusal(k, mode), true);
  }
  function kindChanged() {
    kindChosen = true;
    const k = kind();
    const mode = form.payment_mode.value;
    const allowed = modes[k] || [];
    if (allowed.length === 1 || !refusal(k, mode)) return explain("6", "");
    if (!modeChosen) {
      form.payment_mode.value = allowed[0];
      return explain("6", "Case 4 : le mode de paiement est maintenant « " + labelOf(allowed[0]) + " », qui va avec « " + kindLabel(k) + " ».");
    }
    explain("6", refusal(k, mode), true);
  }
  function showAccount(select) {
    const name = select.closest("td").querySelector(".split-name");
    const option = select.options[select.selectedIndex];
    name.textContent = select.value && option ? option.text : "";
    name.hidden = !select.value;
  }
  function renumber() {
    tbody.querySelectorAll("tr.split-row").forEach(function (row, index) {
      row.querySelectorAll("select, input, label").forEach(function (element) {
        ["id", "name", "for"].forEach(function (attribute) {
          const value = element.getAttribute(attribute);
          if (value) element.setAttribute(attribute, value.replace(/splits-\d+-/, "splits-" + index + "-"));
        });
      });
    });
  }
  document.querySelectorAll(".js-only").forEach(function (element) { element.hidden = false; });
  const addButton = form.querySelector("#add_line");
  addButton.addEventListener("click", function (event) {
    event.preventDefault();
    const rows = tbody.querySelectorAll("tr.split-row");
    const copy = rows[rows.length - 1].cloneNode(true);
    copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    copy.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; showAccount(select); });
    tbody.appendChild(copy);
    renumber();
    copy.querySelector("select").focus();
    update();
  });
  tbody.addEventListener("click", function (event) {
    const button = event.target.closest(".remove-line");
    if (!button) return;
    const rows = tbody.querySelectorAll("tr.split-row");
    const row = button.closest("tr");
    if (rows.length > 1) {
      row.remove();
      renumber();
    } else {
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      row.querySelector("select").selectedIndex = 0;
      showAccount(row.querySelector("select"));
    }
    update();
  });
  // Enter in a field validates the operation. Without this, the browser would use the first submit
  // button of the form, « Ajouter une ligne de ventilation », and Enter would only add an empty line.
  form.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.key !== "Enter" || event.isComposing || !(target instanceof HTMLInputElement)) return;
    if (["button", "submit", "reset", "image", "file"].indexOf(target.type) !== -1) return;
    event.preventDefault();
    form.requestSubmit(document.getElementById("submit"));
  });
  form.addEventListener("change", function (event) {
    if (event.target === form.payment_mode) modeChanged();
    else if (event.target.name === "kind") kindChanged();
    else if (event.target.classList.contains("split-account")) showAccount(event.target);
  });
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("submit", function (event) {
    if (form.dataset.sent === "1") {
      event.preventDefault();
      return;
    }
    if (event.submitter && event.submitter.name === "submit") {
      form.dataset.sent = "1";
      event.submitter.setAttribute("aria-disabled", "true");
      event.submitter.classList.add("disabled");
    }
  });
  window.addEventListener("pageshow", function () {
    form.dataset.sent = "";
    const submit = document.getElementById("submit");
    submit.classList.remove("disabled");
    submit.removeAttribute("aria-disabled");
  });
  update();
})();

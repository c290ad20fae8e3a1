/* Guided entry form: live "reste à ventiler" (on the signed total of box 7), add/remove split lines, fields shown per kind,
   one submission only. The form works without this script; the server checks everything again. */
(function () {
  "use strict";
  const form = document.getElementById("entry-form");
  if (!form) return;
  const modes = JSON.parse(form.dataset.modes || "{}");
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
    Array.from(select.options).forEach(function (option) {
      option.hidden = allowed.length > 1 && allowed.indexOf(option.value) === -1;
    });
    document.querySelector(".mode-field").hidden = allowed.length <= 1;
    if (allowed.length > 1 && allowed.indexOf(select.value) === -1) select.value = allowed[0];
    document.querySelector(".cheque-field").hidden = !(select.value === "cheque" && (k === "expense" || k === "advance_paid"));
    document.querySelector(".slip-field").hidden = select.value !== "remise";
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
    copy.querySelectorAll("select").forEach(function (select) { select.selectedIndex = 0; });
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
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("submit", function (event) {
    if (form.dataset.sent === "1") {
      event.preventDefault();
      return;
    }
    if (event.submitter && event.submitter.id === "submit") {
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

/* Membership step: live fee and add/remove class rows without reloading the page.
 *
 * Without JavaScript the page works the same way with full submissions ("Ajouter une classe",
 * "Supprimer" and "Mettre à jour ces informations" are real submit buttons); the server always
 * recomputes the fee from the year's rates, so this computation is only a preview of it.
 * Integer cents only; the property surcharge is rounded half up to the cent, as on the server.
 */
(function () {
  "use strict";

  var form = document.getElementById("adhesion");
  if (!form) { return; }
  var body = document.getElementById("classes-body");
  var template = document.getElementById("class-row-template");
  var addButton = document.getElementById("add_class");
  var announce = document.getElementById("annonce");
  var panel = document.getElementById("montant");
  var maxRows = parseInt(addButton.getAttribute("data-max"), 10) || 60;

  var rates = {
    pupil: parseInt(panel.getAttribute("data-pupil-fee"), 10),
    adult: parseInt(panel.getAttribute("data-adult-fee"), 10),
    insurance: parseInt(panel.getAttribute("data-insurance-fee"), 10),
    threshold: parseInt(panel.getAttribute("data-threshold"), 10),
    ppm: parseInt(panel.getAttribute("data-ppm"), 10)
  };

  /* 123456 -> "1 234,56 €" (narrow no-break space between thousands, no-break space before €). */
  function money(cents) {
    var sign = cents < 0 ? "-" : "";
    var abs = Math.abs(cents);
    var whole = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    var rest = (abs % 100).toString();
    if (rest.length < 2) { rest = "0" + rest; }
    return sign + whole + "," + rest + "\u00a0€";
  }

  /* A count typed in a field: a whole number >= 0, or null when it is not one. */
  function count(input) {
    if (!input) { return 0; }
    var text = input.value.trim();
    if (text === "") { return 0; }
    return /^\d{1,6}$/.test(text) ? parseInt(text, 10) : null;
  }

  /* "1 234,56" -> 123456 cents, or null (the server gives the French error message). */
  function amount(input) {
    var text = input.value.replace(/[\s\u00a0\u202f€]/g, "").replace("EUR", "");
    if (text === "") { return 0; }
    var match = /^(\d+)(?:[,.](\d{1,2}))?$/.exec(text);
    if (!match) { return null; }
    var decimals = (match[2] || "0");
    if (decimals.length < 2) { decimals += "0"; }
    return parseInt(match[1], 10) * 100 + parseInt(decimals, 10);
  }

  /* (excess x ppm) / 1 000 000 rounded half up, in integers (exact below 2^53). */
  function surcharge(excess) {
    if (excess <= 0 || rates.ppm <= 0) { return 0; }
    var scaled = excess * rates.ppm + 500000;
    return (scaled - (scaled % 1000000)) / 1000000;
  }

  function setFee(name, text) {
    var node = panel.querySelector('[data-fee="' + name + '"]');
    if (node) { node.textContent = text; }
  }

  function rows() {
    return Array.prototype.slice.call(body.querySelectorAll("tr.class-row"));
  }

  var announceTimer = null;

  function recompute() {
    var pupils = 0, teachers = 0, valid = true;
    rows().forEach(function (row) {
      var p = count(row.querySelector('input[name$="-pupils"]'));
      var t = count(row.querySelector('input[name$="-teachers"]'));
      if (p === null || t === null) { valid = false; return; }
      pupils += p;
      teachers += t;
    });
    var others = [count(form.elements.atsem), count(form.elements.aesh), count(form.elements.other_adults)];
    var property = amount(form.elements.property_value);
    if (others.indexOf(null) !== -1 || property === null) { valid = false; }
    var totalPupils = document.querySelector('[data-total="pupils"]');
    var totalTeachers = document.querySelector('[data-total="teachers"]');
    totalPupils.textContent = valid ? pupils : "—";
    totalTeachers.textContent = valid ? teachers : "—";
    var message = panel.querySelector('[data-fee="message"]');
    if (!valid || pupils === 0) {
      ["pupil_cotisation", "adult_cotisation", "cotisation", "insurance", "surcharge", "assurance", "total"]
        .forEach(function (name) { setFee(name, "—"); });
      message.textContent = valid ? "Déclarez au moins une classe avec ses élèves pour calculer le montant."
        : "Corrigez les nombres saisis pour calculer le montant (des nombres entiers, et un montant comme 2 500,00).";
      message.hidden = false;
      return;
    }
    message.hidden = true;
    var adults = teachers + others[0] + others[1] + others[2];
    var insured = pupils + adults;
    var pupilCotisation = pupils * rates.pupil;
    var adultCotisation = adults * rates.adult;
    var insurance = insured * rates.insurance;
    var excess = Math.max(property - rates.threshold, 0);
    var extra = surcharge(excess);
    var cotisation = pupilCotisation + adultCotisation;
    var assurance = insurance + extra;
    setFee("pupils", String(pupils));
    setFee("adults", String(adults));
    setFee("insured", String(insured));
    setFee("excess", money(excess));
    setFee("pupil_cotisation", money(pupilCotisation));
    setFee("adult_cotisation", money(adultCotisation));
    setFee("cotisation", money(cotisation));
    setFee("insurance", money(insurance));
    setFee("surcharge", money(extra));
    setFee("assurance", money(assurance));
    setFee("total", money(cotisation + assurance));
    // One spoken update once typing pauses, not one per keystroke.
    window.clearTimeout(announceTimer);
    announceTimer = window.setTimeout(function () {
      setFee("announce", "Total à régler : " + money(cotisation + assurance));
    }, 800);
  }

  /* Row numbers, hidden labels and the (no-JS) remove buttons follow the order on screen. */
  function renumber() {
    rows().forEach(function (row, position) {
      Array.prototype.forEach.call(row.querySelectorAll("[data-number]"), function (node) {
        node.textContent = String(position + 1);
      });
      var button = row.querySelector("button.remove-class");
      if (button) { button.value = String(position); }
    });
    addButton.disabled = rows().length >= maxRows;
  }

  function nextIndex() {
    var highest = -1;
    Array.prototype.forEach.call(body.querySelectorAll('input[name^="classes-"]'), function (input) {
      var match = /^classes-(\d+)-/.exec(input.name);
      if (match) { highest = Math.max(highest, parseInt(match[1], 10)); }
    });
    return highest + 1;
  }

  function addRow() {
    if (rows().length >= maxRows) { return; }
    var html = template.innerHTML.replace(/__index__/g, String(nextIndex()))
      .replace(/__position__/g, String(rows().length)).replace(/__number__/g, String(rows().length + 1));
    body.insertAdjacentHTML("beforeend", html);
    renumber();
    recompute();
    var added = rows()[rows().length - 1];
    added.querySelector('input[name$="-name"]').focus();
    announce.textContent = "Classe " + rows().length + " ajoutée.";
  }

  function removeRow(row) {
    var all = rows();
    var position = all.indexOf(row);
    if (all.length === 1) {
      Array.prototype.forEach.call(row.querySelectorAll("input"), function (input) { input.value = ""; });
      row.querySelector('input[name$="-name"]').focus();
    } else {
      row.parentNode.removeChild(row);
      var remaining = rows();
      var target = remaining[Math.min(position, remaining.length - 1)];
      target.querySelector("button.remove-class").focus();
    }
    renumber();
    recompute();
    announce.textContent = "Classe supprimée.";
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) { return; }
    if (button.name === "add_class") {
      event.preventDefault();
      addRow();
    } else if (button.name === "remove_class") {
      event.preventDefault();
      removeRow(button.closest("tr"));
    }
  });
  form.addEventListener("input", recompute);

  var focus = form.getAttribute("data-focus");
  if (focus && document.getElementById(focus)) {
    document.getElementById(focus).focus();
  } else if (document.getElementById("erreurs")) {
    document.getElementById("erreurs").focus();
  }
  renumber();
  recompute();
}());

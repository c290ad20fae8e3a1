/* Year end: the cash count (arrêté de caisse) totals follow what is typed.
 *
 * Only a preview: the server recomputes the total from the counts when the form is saved and
 * compares it with the cash balance. Integer cents only.
 */
(function () {
  "use strict";

  var form = document.getElementById("arrete-caisse");
  if (!form) { return; }
  var expected = parseInt(form.getAttribute("data-expected"), 10);
  var totalCell = form.querySelector('[data-total="count"]');
  var announce = form.querySelector('[data-total="announce"]');

  /* 123456 -> "1 234,56 €" (narrow no-break space between thousands, no-break space before €). */
  function money(cents) {
    var sign = cents < 0 ? "-" : "";
    var abs = Math.abs(cents);
    var whole = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    var rest = (abs % 100).toString();
    if (rest.length < 2) { rest = "0" + rest; }
    return sign + whole + "," + rest + "\u00a0€";
  }

  function update() {
    var total = 0;
    var valid = true;
    form.querySelectorAll("input.count").forEach(function (input) {
      var value = parseInt(input.getAttribute("data-value"), 10);
      var text = input.value.trim();
      var cell = form.querySelector('[data-subtotal="' + value + '"]');
      if (text === "") { cell.textContent = ""; return; }
      if (!/^\d{1,6}$/.test(text)) { valid = false; cell.textContent = "?"; return; }
      var number = parseInt(text, 10);
      cell.textContent = number ? money(number * value) : "";
      total += number * value;
    });
    totalCell.textContent = valid ? money(total) : "?";
    if (announce && valid) {
      announce.textContent = "Total compté : " + money(total) +
        (total === expected ? ", égal au solde de caisse du cahier." : ".");
    }
  }

  form.addEventListener("input", update);
})();

/* Year switch of the cahier: going to the chosen year without a submit button. */
(function () {
  "use strict";
  const select = document.getElementById("year-select");
  if (!select) return;
  select.addEventListener("change", function () {
    window.location.href = select.dataset.url.replace(/\/0$/, "/" + select.value);
  });
})();

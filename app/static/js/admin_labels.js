// Flask-Admin's list checkboxes carry only a title: give them an accessible name (WCAG 4.1.2).
(function () {
  "use strict";
  document.querySelectorAll("input.action-checkbox, input.action-rowtoggle").forEach(function (box) {
    if (!box.getAttribute("aria-label")) {
      box.setAttribute("aria-label", box.title || "Sélectionner");
    }
  });
})();

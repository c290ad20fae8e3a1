// Long submissions (imports): once sent, the button is disabled (no second import) and a progress
// bar with a message tells the user to wait. Forms opt in with data-busy="message".
(function () {
  "use strict";
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      if (form.dataset.sent) { return; }
      form.dataset.sent = "1";
      var status = document.createElement("div");
      status.className = "busy-status mt-3";
      status.setAttribute("role", "status");
      status.setAttribute("aria-live", "polite");
      var bar = document.createElement("progress");
      bar.className = "w-100";
      bar.setAttribute("aria-label", form.dataset.busy);
      var text = document.createElement("p");
      text.className = "mb-0";
      text.textContent = form.dataset.busy;
      status.appendChild(bar);
      status.appendChild(text);
      form.appendChild(status);
      // Disabled after the submit event has picked the button's value up.
      window.setTimeout(function () {
        form.querySelectorAll("button, input[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });
})();

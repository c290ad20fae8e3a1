/* Nothing typed is ever lost (issue 15, §4).
 *
 * 1. Five minutes before the idle timeout, a warning offers « Rester connecté » (a POST to the
 *    keep-alive endpoint renews the session). Tabs share the time of the last server contact in
 *    localStorage, so a tab in use keeps the others from warning.
 * 2. Every POST form of a logged-in page is copied to localStorage when it is submitted (visible
 *    fields only: never a password, a file, a hidden token). The tab remembers which copy it sent
 *    (sessionStorage). If the answer is the login page or the « session expirée » page, the copy is
 *    kept as interrupted; any other answer means the server got the form, and the copy is deleted.
 * 3. An interrupted copy is put back into its form when its page is opened again by the same user
 *    (after logging in), with a notice; on other pages a banner offers to resume it. Copies last
 *    12 hours at most, belong to one login, and are deleted when another login uses the browser.
 *
 * Nothing is ever sent to the server by this script except the keep-alive request.
 */
(function () {
  "use strict";

  var DRAFTS = "coop85.drafts";
  var SEEN = "coop85.session.seen";
  var PENDING = "coop85.pending-draft";
  var MAX_AGE_MS = 12 * 3600 * 1000;
  var WARN_BEFORE_S = 5 * 60;
  var body = document.body;
  var user = body.dataset.sessionUser || "";

  function read(storage, key, fallback) {
    try {
      var raw = storage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) {
      return fallback;
    }
  }

  function write(storage, key, value) {
    try {
      storage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or disabled: the form still goes to the server as usual */
    }
  }

  function here() {
    return location.pathname + location.search;
  }

  /* -- drafts ------------------------------------------------------------------------------------ */

  function drafts() {
    var all = read(localStorage, DRAFTS, {});
    var now = Date.now();
    var changed = false;
    Object.keys(all).forEach(function (id) {
      var draft = all[id];
      var foreign = user && draft.user !== user;
      if (!draft || now - draft.savedAt > MAX_AGE_MS || foreign) {
        delete all[id];
        changed = true;
      }
    });
    if (changed) write(localStorage, DRAFTS, all);
    return all;
  }

  function saveDrafts(all) {
    write(localStorage, DRAFTS, all);
  }

  function postForms() {
    return Array.prototype.filter.call(document.forms, function (form) {
      return (form.method || "").toLowerCase() === "post" && !form.hasAttribute("data-no-draft");
    });
  }

  function keptField(element) {
    var type = (element.type || "").toLowerCase();
    if (!element.name || element.disabled) return false;
    return ["hidden", "password", "file", "submit", "button", "reset", "image"].indexOf(type) === -1;
  }

  function capture(form) {
    var fields = [];
    Array.prototype.forEach.call(form.elements, function (element) {
      if (!keptField(element)) return;
      var type = (element.type || "").toLowerCase();
      if (type === "checkbox" || type === "radio") {
        fields.push([element.name, element.value, element.checked]);
      } else if (element.tagName === "SELECT" && element.multiple) {
        var values = Array.prototype.filter.call(element.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; });
        fields.push([element.name, values, null]);
      } else {
        fields.push([element.name, element.value, null]);
      }
    });
    return fields;
  }

  function isDirty(form) {
    return Array.prototype.some.call(form.elements, function (element) {
      if (!keptField(element)) return false;
      var type = (element.type || "").toLowerCase();
      if (type === "checkbox" || type === "radio") return element.checked !== element.defaultChecked;
      if (element.tagName === "SELECT") {
        return Array.prototype.some.call(element.options, function (o) { return o.selected !== o.defaultSelected; });
      }
      return element.value !== element.defaultValue;
    });
  }

  function draftOf(form, interrupted) {
    var forms = postForms();
    return {
      user: user,
      path: here(),
      title: document.title,
      savedAt: Date.now(),
      interrupted: interrupted,
      index: forms.indexOf(form),
      action: form.getAttribute("action") || "",
      fields: capture(form),
    };
  }

  function remember(form, interrupted) {
    var all = drafts();
    var id = here() + "#" + postForms().indexOf(form);
    all[id] = draftOf(form, interrupted);
    saveDrafts(all);
    return id;
  }

  function restore(form, draft) {
    var byName = {};
    Array.prototype.forEach.call(form.elements, function (element) {
      if (keptField(element)) (byName[element.name] = byName[element.name] || []).push(element);
    });
    var used = {};
    var missing = 0;
    draft.fields.forEach(function (field) {
      var name = field[0], value = field[1], checked = field[2];
      var candidates = byName[name] || [];
      var element;
      if (checked !== null) {
        element = candidates.filter(function (c) { return c.value === value; })[0];
        if (element) element.checked = checked;
      } else {
        var rank = used[name] || 0;
        used[name] = rank + 1;
        element = candidates[rank];
        if (element && element.tagName === "SELECT" && element.multiple) {
          Array.prototype.forEach.call(element.options, function (o) { o.selected = value.indexOf(o.value) !== -1; });
        } else if (element) {
          element.value = value;
        }
      }
      if (!element) {
        missing += 1;
        return;
      }
      element.dispatchEvent(new Event("input", { bubbles: true }));
      element.dispatchEvent(new Event("change", { bubbles: true }));
    });
    return missing;
  }

  function notice(templateId) {
    var template = document.getElementById(templateId);
    return template ? template.content.firstElementChild.cloneNode(true) : null;
  }

  function settlePending() {
    /* What became of the form this tab sent last: kept (the answer is a login or expiry page) or done. */
    var pending = read(sessionStorage, PENDING, null);
    if (!pending) return;
    sessionStorage.removeItem(PENDING);
    var all = read(localStorage, DRAFTS, {});
    if (!all[pending]) return;
    if (body.hasAttribute("data-draft-hold")) {
      all[pending].interrupted = true;
      Array.prototype.forEach.call(document.querySelectorAll("[data-draft-kept]"), function (note) {
        note.hidden = false;
      });
    } else {
      delete all[pending];
    }
    saveDrafts(all);
  }

  function offerDrafts() {
    if (!user) return;
    var all = drafts();
    var forms = postForms();
    var main = document.getElementById("contenu");
    var waiting = null;
    Object.keys(all).forEach(function (id) {
      var draft = all[id];
      if (!draft.interrupted) return;
      var form = draft.path === here() ? forms[draft.index] : null;
      if (form && (form.getAttribute("action") || "") === draft.action) {
        restore(form, draft);
        delete all[id];
        var restored = notice("draft-restored");
        if (restored) form.parentNode.insertBefore(restored, form);
      } else if (!waiting && draft.path !== here()) {
        waiting = id;
      }
    });
    saveDrafts(all);
    if (waiting && main) {
      var banner = notice("draft-waiting");
      if (!banner) return;
      var link = banner.querySelector("[data-draft-link]");
      link.href = all[waiting].path;
      link.setAttribute("aria-label", "Reprendre la saisie : " + all[waiting].title);
      banner.querySelector("[data-draft-discard]").addEventListener("click", function () {
        var current = drafts();
        delete current[waiting];
        saveDrafts(current);
        banner.remove();
      });
      main.insertBefore(banner, main.firstChild);
    }
  }

  function watchSubmissions() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!user || !(form instanceof HTMLFormElement)) return;
      if (form.hasAttribute("data-logout")) {
        localStorage.removeItem(DRAFTS);
        return;
      }
      if (postForms().indexOf(form) === -1) return;
      write(sessionStorage, PENDING, remember(form, false));
    });
  }

  /* -- expiry warning ------------------------------------------------------------------------------- */

  function sessionWarning() {
    var idle = parseInt(body.dataset.sessionIdle || "0", 10);
    var box = document.getElementById("session-warning");
    if (!user || !idle || !box) return;
    var countdown = box.querySelector("[data-countdown]");
    var expired = false;

    function lastContact() {
      return Math.max(read(localStorage, SEEN, {})[user] || 0, loadedAt);
    }

    function touch(when) {
      var seen = read(localStorage, SEEN, {});
      seen[user] = when;
      write(localStorage, SEEN, seen);
    }

    function show(state) {
      box.hidden = state === "none";
      Array.prototype.forEach.call(box.querySelectorAll("[data-when]"), function (part) {
        part.hidden = part.getAttribute("data-when") !== state;
      });
    }

    function minutes(seconds) {
      var m = Math.ceil(seconds / 60);
      return m <= 1 ? "moins d'une minute" : m + " minutes";
    }

    function tick() {
      if (expired) return;
      var left = idle - (Date.now() - lastContact()) / 1000;
      if (left <= 0) {
        expired = true;
        show("expired");
      } else if (left <= WARN_BEFORE_S) {
        countdown.textContent = minutes(left);
        if (box.hidden) show("soon");
      } else if (!box.hidden) {
        show("none");
      }
    }

    function keepAlive(button) {
      var token = document.querySelector('meta[name="csrf-token"]');
      button.disabled = true;
      fetch(body.dataset.sessionKeepalive, {
        method: "POST",
        credentials: "same-origin",
        redirect: "manual",
        headers: { "X-CSRFToken": token ? token.content : "", Accept: "application/json" },
      })
        .then(function (response) {
          if (response.ok) {
            touch(Date.now());
            show("none");
          } else {
            expired = true;
            show("expired");
          }
        })
        .catch(function () {
          countdown.textContent = minutes(idle - (Date.now() - lastContact()) / 1000) +
            " (le portail ne répond pas : réessayez)";
        })
        .then(function () {
          button.disabled = false;
        });
    }

    function relogin() {
      postForms().forEach(function (form) {
        if (isDirty(form)) remember(form, true);
      });
      /* Reloading the page asks the server: an ended session answers with the login page, which comes
         back here afterwards; a session another tab kept alive simply shows the page again, filled. */
      location.reload();
    }

    var loadedAt = Date.now();
    touch(loadedAt);
    box.addEventListener("click", function (event) {
      var action = event.target.getAttribute("data-session-action");
      if (action === "keepalive") keepAlive(event.target);
      if (action === "relogin") relogin();
    });
    window.addEventListener("storage", function (event) {
      if (event.key === SEEN) tick();
    });
    setInterval(tick, 1000);
  }

  settlePending();
  offerDrafts();
  watchSubmissions();
  sessionWarning();
})();

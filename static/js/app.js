// Small enhancements shared by every page: local times, confirmation dialogs, copy buttons.
// Every page works without this script; it only makes them nicer.

(() => {
  "use strict";

  // <time datetime="..." data-local="datetime|date|time"> shown in the reader's own time zone.
  const formats = {
    datetime: { dateStyle: "medium", timeStyle: "short" },
    date: { dateStyle: "medium" },
    time: { timeStyle: "short" },
    short: { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" },
  };
  document.querySelectorAll("time[data-local]").forEach((el) => {
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) return;
    try {
      el.textContent = new Intl.DateTimeFormat(undefined, formats[el.dataset.local] || formats.datetime).format(when);
      el.title = when.toString();
    } catch (err) {
      /* keep the server's text */
    }
  });

  document.querySelector("[data-focus-on-load]")?.focus();

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // A confirmation dialog built once, used by forms with data-confirm and by links with
  // data-confirm-post (a link to a confirmation page, upgraded to a POST from the dialog).
  let dialog = null;
  function confirmDialog({ title, text, action }) {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "modal";
      dialog.setAttribute("aria-labelledby", "confirm-title");
      dialog.setAttribute("aria-describedby", "confirm-text");
      dialog.innerHTML =
        '<form method="dialog"><div class="modal-body"><h2 id="confirm-title"></h2><p id="confirm-text"></p></div>' +
        '<div class="modal-actions"><button class="button secondary" value="cancel" type="submit">Cancel</button>' +
        '<button class="button danger" value="confirm" type="submit" id="confirm-ok"></button></div></form>';
      document.body.append(dialog);
    }
    dialog.querySelector("#confirm-title").textContent = title;
    dialog.querySelector("#confirm-text").textContent = text || "";
    dialog.querySelector("#confirm-ok").textContent = action || "Confirm";
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
      dialog.showModal();
      dialog.querySelector('button[value="cancel"]').focus();
    });
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm || form.dataset.confirmed) return;
    event.preventDefault();
    const ok = await confirmDialog({
      title: form.dataset.confirm,
      text: form.dataset.confirmText,
      action: form.dataset.confirmAction,
    });
    if (ok) {
      form.dataset.confirmed = "1";
      form.submit();
    }
  });

  document.addEventListener("click", async (event) => {
    const link = event.target.closest && event.target.closest("a[data-confirm-post]");
    if (!link) return;
    event.preventDefault();
    const ok = await confirmDialog({
      title: link.dataset.confirmPost,
      text: link.dataset.confirmText,
      action: link.dataset.confirmAction,
    });
    if (!ok) return;
    const form = document.createElement("form");
    form.method = "post";
    form.action = link.href;
    const token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = csrfToken();
    form.append(token);
    document.body.append(form);
    form.submit();
  });

  // <button data-copy="element-id"> copies that element's value or text.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = "value" in source && source.value !== undefined ? source.value : source.textContent;
    try {
      await navigator.clipboard.writeText(text.trim());
    } catch (err) {
      if (source.select) source.select();
      document.execCommand("copy");
    }
    const label = button.querySelector("[data-label]") || button;
    const before = label.textContent;
    label.textContent = "Copied";
    button.classList.add("copied");
    setTimeout(() => {
      label.textContent = before;
      button.classList.remove("copied");
    }, 1600);
  });
})();

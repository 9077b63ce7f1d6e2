/**
 * The admin page's only script, served as a file (`script-src 'self'`, no inline script or event
 * handler attributes). Plain browser JavaScript, no build step: it enhances pages that work
 * without it (tabs are links, actions are forms), and adds what cannot work without it: the live
 * template preview, inserting a merge field at the cursor, and generating a new secret in the
 * browser (so the server never has to show one).
 *
 * @module
 */
export const CLIENT_SCRIPT = `'use strict';
(function () {
  // Tabs (WAI-ARIA tabs pattern): the tab links switch panels in place, arrow keys move between
  // tabs, and the address bar follows so a reload shows the same tab.
  var tabs = Array.prototype.slice.call(document.querySelectorAll('[role="tab"]'));
  function select(tab, focus) {
    tabs.forEach(function (other) {
      var selected = other === tab;
      other.setAttribute('aria-selected', selected ? 'true' : 'false');
      other.setAttribute('tabindex', selected ? '0' : '-1');
      var panel = document.getElementById(other.getAttribute('aria-controls'));
      if (panel) panel.hidden = !selected;
    });
    if (focus) tab.focus();
    var url = new URL(window.location.href);
    url.search = '';
    url.searchParams.set('tab', tab.getAttribute('data-tab'));
    window.history.replaceState(null, '', url.pathname + url.search);
  }
  tabs.forEach(function (tab, index) {
    tab.addEventListener('click', function (event) {
      event.preventDefault();
      select(tab, false);
    });
    tab.addEventListener('keydown', function (event) {
      var next = null;
      if (event.key === 'ArrowRight') next = tabs[(index + 1) % tabs.length];
      else if (event.key === 'ArrowLeft') next = tabs[(index - 1 + tabs.length) % tabs.length];
      else if (event.key === 'Home') next = tabs[0];
      else if (event.key === 'End') next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        select(next, true);
      }
    });
  });

  // Live preview of the template being edited: the server renders it with sample data.
  var editor = document.querySelector('form[data-preview-url]');
  if (editor) {
    var output = document.getElementById('preview-body');
    var contentType = document.getElementById('preview-content-type');
    var status = document.getElementById('preview-status');
    var timer = null;
    var sequence = 0;
    var refresh = function () {
      var mine = ++sequence;
      var body = new URLSearchParams();
      ['csrf_token', 'mime_type', 'template'].forEach(function (name) {
        var field = editor.elements.namedItem(name);
        if (field) body.set(name, field.value);
      });
      status.textContent = 'Rendering preview…';
      fetch(editor.getAttribute('data-preview-url'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: body,
        credentials: 'same-origin',
      })
        .then(function (response) { return response.json(); })
        .then(function (result) {
          if (mine !== sequence) return;
          if (result.ok) {
            output.textContent = result.body;
            contentType.textContent = result.contentType;
            status.textContent = 'Preview up to date.';
          } else {
            output.textContent = '';
            contentType.textContent = '';
            status.textContent = result.error || 'The template cannot be rendered.';
          }
        })
        .catch(function () {
          if (mine === sequence) status.textContent = 'The preview could not be loaded.';
        });
    };
    var schedule = function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    };
    // The server rendered the preview of the saved template; only edits need a new one.
    editor.addEventListener('input', schedule);
    editor.addEventListener('change', schedule);

    // "Insert" next to a merge field puts {{path}} where the cursor is.
    Array.prototype.slice.call(document.querySelectorAll('button[data-insert]')).forEach(function (button) {
      button.addEventListener('click', function () {
        var area = editor.elements.namedItem('template');
        var text = button.getAttribute('data-insert');
        var start = area.selectionStart, end = area.selectionEnd;
        area.value = area.value.slice(0, start) + text + area.value.slice(end);
        area.selectionStart = area.selectionEnd = start + text.length;
        area.focus();
        schedule();
      });
    });
  }

  // "Generate": a new whsec_ secret made in this browser, shown here so it can be copied before saving.
  Array.prototype.slice.call(document.querySelectorAll('button[data-generate-secret]')).forEach(function (button) {
    button.addEventListener('click', function () {
      var field = document.getElementById(button.getAttribute('data-generate-secret'));
      var bytes = new Uint8Array(32);
      crypto.getRandomValues(bytes);
      var binary = '';
      bytes.forEach(function (b) { binary += String.fromCharCode(b); });
      field.type = 'text';
      field.value = 'whsec_' + btoa(binary);
      field.focus();
      field.select();
    });
  });
})();
`;

// tally dashboard: the one optional script. Everything reads without it; it only keeps the
// "Now" number fresh (every 30 s, from this server) and closes open menus on Escape or an
// outside click. Same origin only (Content-Security-Policy: default-src 'self').
'use strict';
(function () {
  document.documentElement.classList.add('js');
  var el = document.querySelector('[data-realtime-url]');
  if (el && window.fetch) {
    var url = el.getAttribute('data-realtime-url');
    var refresh = function () {
      if (document.visibilityState === 'hidden') return;
      fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j || typeof j.visitors !== 'number') return;
          el.setAttribute('data-value', String(j.visitors));
          // Written as the page's language writes numbers (<html lang>), like the server did.
          el.textContent = j.visitors.toLocaleString(document.documentElement.lang || 'en');
        })
        .catch(function () {});
    };
    setInterval(refresh, 30000);
    document.addEventListener('visibilitychange', refresh);
  }
  var menus = document.querySelectorAll('details.menu');
  document.addEventListener('click', function (e) {
    menus.forEach(function (m) { if (m.open && !m.contains(e.target)) m.open = false; });
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') menus.forEach(function (m) { m.open = false; });
  });
})();

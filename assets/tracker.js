/*
 * tally tracker -- served by the tally server at GET /t.js.
 *
 *   <script defer src="https://stats.example.org/t.js"
 *           data-domain="www.example.org"></script>
 *
 * What it sends (JSON as text/plain; while the page stays, with fetch keepalive,
 * whose answer it reads; when the page is hidden or left, with
 * navigator.sendBeacon, which the browser delivers after the page is gone):
 *   pageview    {"n":"pageview","u":location.href,"d":data-domain,
 *                "r":document.referrer or null,"w":window.innerWidth}
 *   engagement  {"n":"engagement","u":url of the page measured,"d":...,
 *                "e":visible milliseconds,"sd":max scroll depth percent 0-100}
 *   custom      {"n":name,"u":location.href,"d":...,"p":props}
 *               from window.tally(name, {props: {...}})
 *   With data-hash, hash-only URL changes count as pageviews and "h":1 is added.
 *   "d" is left out when data-domain is absent.
 *
 * When: a pageview on load (or when a prerendered page is shown), on SPA
 * navigation and on a back/forward-cache restore. An engagement for the page
 * when it is hidden (visibilitychange) or left (pagehide), and before the
 * pageview of an SPA navigation; only visible time counts, each interval is
 * reported once, and 0 ms is never sent.
 *
 * What it never does: set or read cookies, touch sessionStorage or IndexedDB,
 * use localStorage for anything but the visitor's own opt-out, or fingerprint
 * (no canvas, fonts, plugins, screen or hardware probing). Nothing identifies the visitor on the client. It does not check
 * navigator.webdriver either: bot filtering is the server's job.
 *
 * Attributes on the <script> tag:
 *   data-domain           site name sent as "d"
 *   data-api              event endpoint (default: this script's origin + /api/event)
 *   data-hash             count hash changes as page changes
 *   data-allow-localhost  also track on localhost / 127.0.0.1 / [::1] (off by default)
 *
 * Opt-out: the site's privacy page offers a button that calls
 * `tally.optOut()` (and `tally.optIn()` to undo; `tally.optedOut()` tells).
 * The choice is remembered in this browser only, as localStorage key
 * `tally_ignore` = "1": written only when the visitor opts out, read once per
 * page load, never sent anywhere; tally stores nothing about it. A page (or an
 * extension) can also set `window.tallyIgnore = true` for the current page.
 *
 * SPA navigation: history.pushState and popstate (plus hashchange with
 * data-hash) send a pageview when the URL changed. replaceState is not
 * wrapped (routers use it for query/state updates and redirects); like
 * Plausible, only pushState navigations count.
 *
 * Backing off: when tally answers 503 (overloaded) or 429 (rate limited), the
 * tracker sends nothing until the Retry-After time has passed (30 s if it
 * cannot read it), keeps up to 20 beacons meanwhile (the refused one first)
 * and sends them then. Beacons sent as the page is left cannot be held.
 *
 * Hand-written ES5; assets/tracker.min.js is built from this file with
 * tests/browser/build-tracker.js (terser) and is what /t.js serves.
 */
(function (w, d) {
  var l = w.location;
  var h = w.history;
  var s = d.currentScript;
  if (!s) return;
  var attr = function (n) { return s.getAttribute('data-' + n); };
  var api = attr('api') || new URL('/api/event', s.src).href;
  var domain = attr('domain') || void 0;
  var hashMode = attr('hash') != null ? 1 : void 0; // also the "h" field
  var off = /^(localhost|127\.0\.0\.1|\[::1\])$/.test(l.hostname) && attr('allow-localhost') == null ||
    l.protocol == 'file:';

  var KEY = 'tally_ignore';
  var store = function (f) { try { return f(w.localStorage); } catch (e) {} };
  var optedOut = store(function (l) { return l.getItem(KEY) == '1'; }) || false;

  var lastKey; // URL (without hash unless data-hash) of the last pageview
  var lastUrl; // location.href of the last pageview; engagements report it
  var since = 0; // start of the current visible interval (not yet reported), or 0
  var depth = 0; // max scroll depth percent of the current page
  var gone = false; // pagehide seen; wait for pageshow before timing again

  var pause = 0; // tally asked to wait until this time (ms)
  var held = []; // beacons waiting for the pause to end
  var timer = 0;

  function hold(b) {
    if (held.length < 20) held.push(b);
    if (!timer) {
      timer = setTimeout(function () {
        timer = 0;
        var q = held;
        held = [];
        for (var i = 0; i < q.length; i++) post(q[i]);
      }, pause - Date.now());
    }
  }

  function post(b, leaving) {
    if (Date.now() < pause) return leaving || hold(b);
    // sendBeacon returns false when the browser refuses to queue the beacon.
    if (leaving && navigator.sendBeacon && navigator.sendBeacon(api, b)) return;
    if (w.fetch) {
      fetch(api, {
        method: 'POST', body: b, keepalive: true,
        headers: { 'Content-Type': 'text/plain' }
      }).then(function (r) {
        if (r.status == 503 || r.status == 429) {
          pause = Date.now() + (parseInt(r.headers.get('Retry-After'), 10) || 30) * 1e3;
          hold(b); // not accepted: send it again after the pause
        }
      })['catch'](function () {});
    } else if (!leaving && navigator.sendBeacon) navigator.sendBeacon(api, b);
  }

  // `leaving`: the page is being hidden or left, so the beacon must go now.
  function send(o, leaving) {
    if (off || optedOut || w.tallyIgnore) return;
    o.d = domain; // left out of the JSON when undefined
    post(JSON.stringify(o), leaving);
  }

  function scroll() {
    // NaN (nothing to measure) never wins the comparison.
    var p = Math.round((w.pageYOffset + w.innerHeight) / d.documentElement.scrollHeight * 100);
    if (p > depth) depth = Math.min(p, 100);
  }

  function start() {
    if (!since && !gone && !d.hidden) since = Date.now();
  }

  // Report the visible time since the last report and stop the clock (every
  // pause is a report, so one interval never counts twice); callers restart it.
  function engage(leaving) {
    scroll(); // pushState/popstate: the DOM is still the previous page's
    var e = since && Date.now() - since;
    since = 0;
    if (lastUrl && e > 0) send({ n: 'engagement', u: lastUrl, e: e, sd: depth }, leaving);
  }

  function page() {
    var key = hashMode ? l.href : l.href.split('#')[0];
    if (key == lastKey) return;
    engage(); // for the previous page (SPA navigation)
    start();
    lastKey = key;
    lastUrl = l.href;
    depth = 0; // measured on scroll and when the page is left
    send({
      n: 'pageview', u: lastUrl, r: d.referrer || null,
      w: w.innerWidth, h: hashMode
    });
  }

  var on = function (t, f, o) { (o || w).addEventListener(t, f); };
  on('scroll', scroll);
  on('visibilitychange', function () {
    d.hidden ? engage(1) : start();
  }, d);
  on('pagehide', function () {
    engage(1);
    gone = true;
  });
  // Back/forward cache restore: the page is shown again, count a new view.
  on('pageshow', function (e) {
    if (e.persisted) {
      gone = false;
      lastKey = null;
      page();
    }
  });

  var push = h.pushState;
  h.pushState = function () {
    var r = push.apply(this, arguments);
    page();
    return r;
  };
  on('popstate', page);
  if (hashMode) on('hashchange', page);

  var queue = w.tally && w.tally.q || [];
  w.tally = function (name, opts) {
    send({ n: name, u: l.href, p: opts && opts.props });
  };
  w.tally.optOut = function () {
    optedOut = true;
    store(function (l) { l.setItem(KEY, '1'); });
  };
  w.tally.optIn = function () {
    optedOut = false;
    store(function (l) { l.removeItem(KEY); });
  };
  w.tally.optedOut = function () { return optedOut; };
  for (var i = 0; i < queue.length; i++) w.tally.apply(w, queue[i]);

  // A prerendered page is counted when it is shown, not when it is fetched.
  if (d.prerendering) on('prerenderingchange', page, d);
  else page();
  start();
})(window, document);

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
 *               from window.tally(name, {props, u, interactive, callback}):
 *               u replaces the page URL ("u"; exclusions still apply to the page
 *               the visitor is on), interactive: false adds "i":false (the event
 *               does not end a bounce), callback is called once the beacon is
 *               sent ({status} when tally answered, else {}), or at once when
 *               nothing is sent (an excluded page, an opt-out, a bad u) or it
 *               waits for a pause. With data-manual, events without u carry the
 *               URL of the last pageview the page sent, not location.href. window.plausible is
 *               the same function, and calls queued by Plausible's snippet
 *               (window.plausible.q) are sent too: a page made for Plausible's
 *               script works with this one. tally('pageview', {u, props,
 *               callback}) sends a pageview (with "r" and "w"; engagement is
 *               then measured for it).
 *   tagged      {"n":name,"u":location.href,"d":...,"p":props} on a click of an
 *               element with the class plausible-event-name=Sign+up (or of
 *               something up to three levels inside it), as with Plausible's
 *               tagged events (also tally-event-name=..., and "--" for "="):
 *               "Sign up" ("+" is a space); classes plausible-event-KEY=VALUE
 *               add props. Clicks inside a form are left to its submit, which
 *               sends the event of the form or of a tagged element around it.
 *               A tagged link sends its own event, not an outbound link or
 *               file download one. Always on.
 *   With data-hash, hash-only URL changes count as pageviews and "h":1 is added.
 *   "d" is left out when data-domain is absent.
 *
 * Built-in events, each off unless its attribute is on the tag; names and props
 * are Plausible's, so goals made for Plausible keep working:
 *   data-outbound-links   {"n":"Outbound Link: Click","u":page,"p":{"url":link}}
 *                         on a click (or middle click) on an http(s) link to
 *                         another host
 *   data-file-downloads   {"n":"File Download","u":page,"p":{"url":link}} on a
 *                         click on a link whose path ends in a tracked extension:
 *                         the attribute's value ("pdf,odt"), else the default list
 *                         (FILES below, Plausible's); an outbound file link counts
 *                         as an outbound link when both are on
 *   data-404              {"n":"404","u":page,"p":{"path":location.pathname}}
 *                         after the pageview: put it on the tag of the site's
 *                         "not found" page
 *   data-form-submissions {"n":"Form: Submission","u":page} when a form is sent
 *   The collector reduces "url" like a page URL (no query but its allow-list,
 *   no fragment) and "path" like a page path, and stores them without the
 *   site's props_allowlist. Clicks and submissions never wait or call
 *   preventDefault: the beacon goes with sendBeacon (keepalive fetch without
 *   it), which the browser delivers after the page is gone, so navigation
 *   happens at once however slow the collector is.
 *
 * Excluded pages: data-exclude="/admin/**, /account/*" (the collector's
 * [[sites]] exclude_paths patterns: * one path segment, a final ** the rest; a
 * trailing slash of the path does not matter; Plausible's * inside a segment,
 * "/how-to-*", works here too). On a page whose path matches, nothing at all is
 * sent: no pageview, engagement, custom or built-in event. Included pages:
 * data-include="/blog/**, /" (the collector's include_paths, same patterns):
 * on a page whose path matches none of them, likewise nothing is sent.
 *
 * When: a pageview on load (or when a prerendered page is shown), on SPA
 * navigation and on a back/forward-cache restore (none of these with
 * data-manual). An engagement for the page
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
 *   data-manual           no pageview of its own (on load, SPA navigation or a
 *                         back/forward restore): only tally('pageview', {u})
 *   data-allow-localhost  also track on localhost / 127.0.0.1 / [::1] (off by default)
 *   data-exclude, data-include, data-outbound-links, data-file-downloads, data-404,
 *   data-form-submissions: see above
 *   event-KEY="value"     prop KEY of every pageview and custom event sent from this
 *                         page, as Plausible's pageview props; a prop the call
 *                         itself gives wins (stored when props_allowlist lists KEY)
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
 * and sends them then, one at a time and in order. Beacons sent as the page
 * is left cannot be held.
 *
 * Hand-written ES5; assets/tracker.min.js is built from this file with
 * tests/browser/build-tracker.js (terser) and is what /t.js serves.
 */
(function (w, d) {
  // data-file-downloads without a value: Plausible's default extensions.
  var FILES = 'pdf,xlsx,docx,txt,rtf,csv,exe,key,pps,ppt,pptx,7z,pkg,rar,gz,zip,avi,mov,mp4,mpeg,wmv,midi,mp3,wav,wma,dmg';
  var l = w.location;
  var h = w.history;
  var s = d.currentScript;
  if (!s) return;
  var attr = function (n) { return s.getAttribute('data-' + n); };
  var api = attr('api') || new URL('/api/event', s.src).href;
  var domain = attr('domain') || void 0;
  var hashMode = attr('hash') != null ? 1 : void 0; // also the "h" field
  var has = function (n) { return attr(n) != null; };
  var manual = has('manual');
  // event-KEY="value" attributes: props of every event but engagements (Plausible's).
  var tagProps = {}, hasTagProps = 0;
  for (var i = 0, a; a = s.attributes[i++];) {
    if (!a.name.indexOf('event-')) tagProps[a.name.slice(6)] = a.value, hasTagProps = 1;
  }
  var off = /^(localhost|127\.0\.0\.1|\[::1\])$/.test(l.hostname) && !has('allow-localhost') ||
    l.protocol == 'file:';

  // data-exclude and data-include, each as one regular expression: `*` one non-empty segment,
  // a final `**` the rest, one trailing slash of the path ignored (the collector's rules); 0
  // when not set. Plausible's `**` elsewhere (`/blog**`) is any characters, also none, as
  // there: a list copied from a Plausible tag keeps its meaning (the collector refuses it).
  var paths = function (n) {
    var r = [];
    (attr(n) || '').split(',').forEach(function (p) {
      p = p.trim(); // "/" alone is the home page; an empty entry is nothing
      if (p) {
        r.push(p.replace(/\/$/, '').replace(/[.+?^${}()|[\]\\]/g, '\\$&')
          .replace(/\/\*\*$/, '/.+').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]+')
          .replace(/\0/g, '.*'));
      }
    });
    return r.length && RegExp('^(' + r.join('|') + ')/?$');
  };
  var exclude = paths('exclude');
  var include = paths('include');

  var KEY = 'tally_ignore';
  var store = function (f) { try { return f(w.localStorage); } catch (e) {} };
  var optedOut = store(function (l) { return l.getItem(KEY) == '1'; }) || false;

  var lastKey; // URL (without hash unless data-hash) of the last pageview
  var lastUrl; // location.href of the last pageview; engagements report it
  var since = 0; // start of the current visible interval (not yet reported), or 0
  var depth = 0; // max scroll depth percent of the current page
  var gone = false; // pagehide seen; wait for pageshow before timing again

  var pause = 0; // tally asked to wait until this time (ms)
  var held = []; // beacons waiting for the pause to end, oldest first
  var timer = 0; // set while held beacons are waiting or being sent

  // Held beacons go one at a time, each after the previous one's answer: fetches
  // in parallel can reach tally in any order, and the order decides a visit's
  // entry page and which page an engagement closes.
  function next() {
    timer = held.length ? setTimeout(function () { post(held.shift(), 0, 1); }, pause - Date.now()) : 0;
  }

  // `queued`: b is the oldest held beacon, sent by next(). `cb`: the caller's
  // callback, called once the beacon is sent (or held, or dropped).
  function post(b, leaving, queued, cb) {
    cb = cb || function () {}; // called with {status} once tally answered, else {}
    // While held beacons wait, newer ones queue behind them; one sent as the
    // page is left must go now, or not at all during a pause.
    if (!queued && (Date.now() < pause || timer && !leaving)) {
      if (!leaving && held.length < 20) held.push(b);
      if (!timer) next();
      return cb({});
    }
    // sendBeacon returns false when the browser refuses to queue the beacon.
    if (leaving && navigator.sendBeacon && navigator.sendBeacon(api, b)) return cb({});
    if (w.fetch) {
      var status;
      fetch(api, {
        method: 'POST', body: b, keepalive: true,
        headers: { 'Content-Type': 'text/plain' }
      }).then(function (r) {
        status = r.status;
        if (r.status == 503 || r.status == 429) {
          pause = Date.now() + (parseInt(r.headers.get('Retry-After'), 10) || 30) * 1e3;
          // Not accepted: send it again after the pause, before the newer ones.
          queued ? held.unshift(b) : held.length < 20 && held.push(b);
          return 1;
        }
      })['catch'](function () {}).then(function (refused) {
        if (queued || refused && !timer) next();
        cb(status ? { status: status } : {});
      });
    } else {
      if (!leaving && navigator.sendBeacon) navigator.sendBeacon(api, b);
      cb({});
    }
  }

  // `leaving`: the page is being hidden or left, so the beacon must go now.
  function send(o, leaving, cb) {
    // The page the beacon is about decides (an engagement's may be the one just left), and for
    // the others the page the visitor is on too (a URL given with `u` does not lift them out).
    var out = function (p) { return exclude && exclude.test(p) || include && !include.test(p); };
    if (off || optedOut || w.tallyIgnore || out(new URL(o.u).pathname) ||
      o.n != 'engagement' && out(l.pathname)) return cb && cb({});
    o.d = domain; // left out of the JSON when undefined
    // (Object.assign: every browser with URL and fetch, which the tracker needs anyway, has it)
    if (hasTagProps && o.n != 'engagement') o.p = Object.assign({}, tagProps, o.p);
    post(JSON.stringify(o), leaving, 0, cb);
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

  // `o`: a pageview the page asked for, tally('pageview', {u, props, callback}); the
  // only ones sent with data-manual.
  function page(o) {
    var key = hashMode ? l.href : l.href.split('#')[0];
    if (!o && (manual || key == lastKey)) return;
    engage(); // for the previous page (SPA navigation)
    start();
    lastKey = key;
    lastUrl = o ? o.u : l.href;
    depth = 0; // measured on scroll and when the page is left
    send({
      n: 'pageview', u: lastUrl, r: d.referrer || null,
      w: w.innerWidth, h: hashMode, p: o && o.p
    }, 0, o && o.cb);
  }

  var on = function (t, f, o, capture) { (o || w).addEventListener(t, f, capture); };
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
      start(); // with data-manual page() sends nothing, but visible time counts again
    }
  });

  var push = h.pushState;
  h.pushState = function () {
    var r = push.apply(this, arguments);
    page();
    return r;
  };
  // Not page itself: it would take the event for a pageview the page asked for.
  var auto = function () { page(); };
  on('popstate', auto);
  if (hashMode) on('hashchange', auto);

  var queued = function (f) { return f && f.q || []; };
  var queue = queued(w.tally).concat(queued(w.plausible));
  // The address events are sent with: the page's, or with data-manual the last one the page
  // sent a pageview with (it may have stripped what the real one holds).
  var here = function () { return manual && lastUrl || l.href; };
  w.tally = w.plausible = function (name, o) {
    o = o || {};
    var u;
    try { u = new URL(o.u || here(), l.href).href; } catch (e) { return o.callback && o.callback({}); }
    if (name == 'pageview') return page({ u: u, p: o.props, cb: o.callback });
    send({ n: name, u: u, p: o.props, i: o.interactive === false ? false : void 0 }, 0, o.callback);
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

  // Built-in events (see the header). Links: the closest <a href> of what was clicked; SVG
  // links (no `protocol`) and other schemes (mailto:, tel:, javascript:) are left alone.
  var outbound = has('outbound-links');
  var files = attr('file-downloads');
  if (files != null) {
    files = (files || FILES).toLowerCase().replace(/[\s.]/g, '').split(',');
  }
  // The event of a tagged element (see the header): `el` or one of its three nearest parents,
  // as Plausible looks; its name and props from its classes (`=` or `--` after the key, any
  // case of "name"), or nothing.
  var tagged = function (el) {
    for (var i = 0, n, p, m; el && el.getAttribute && i < 4; i++, el = el.parentNode) {
      p = {};
      (el.getAttribute('class') || '').split(/\s+/).forEach(function (c) {
        if (m = /^(plausible|tally)-event-(.+?)(=|--)(.+)$/.exec(c)) {
          c = m[4].replace(/\+/g, ' ');
          /^name$/i.test(m[2]) ? n = c : p[m[2]] = c;
        }
      });
      if (n) return { n: n, u: here(), p: p, el: el };
    }
  };
  var last; // the tagged element of the click being handled (a label's click comes twice)
  var click = function (e) {
    var t = e.target;
    if (!t.closest || e.type == 'auxclick' && e.button != 1) return; // auxclick: the middle button only
    // As the page may be left now: sendBeacon, and no waiting (see post). Clicks in a form
    // are left to its submit, as Plausible does.
    var n = !t.closest('form') && tagged(t);
    if (n) {
      if (n.el != last) send({ n: n.n, u: n.u, p: n.p }, 1);
      last = n.el;
      return setTimeout(function () { last = 0; });
    }
    var a = t.closest('a[href]');
    if (!a || !/^https?:$/.test(a.protocol)) return;
    n = outbound && a.host != l.host ? 'Outbound Link: Click' :
      files && files.indexOf(a.pathname.split('.').pop().toLowerCase()) >= 0 && 'File Download';
    if (n) send({ n: n, u: here(), p: { url: a.href } }, 1);
  };
  on('click', click, d);
  on('auxclick', click, d);
  // Capture: counted even when the page's own handler stops the event.
  var forms = has('form-submissions');
  on('submit', function (e) {
    var n = tagged(e.target);
    if (n) send({ n: n.n, u: n.u, p: n.p }, 1);
    if (forms) send({ n: 'Form: Submission', u: here() }, 1);
  }, d, true);

  // Then the calls made before the script ran, each on its own: one that fails (a callback
  // that throws) must not stop the others or the tracker.
  function first() {
    page();
    if (has('404')) send({ n: '404', u: here(), p: { path: new URL(here()).pathname } });
    queue.forEach(function (c) { try { w.tally.apply(w, c); } catch (e) {} });
  }
  // A prerendered page is counted when it is shown, not when it is fetched.
  if (d.prerendering) on('prerenderingchange', first, d);
  else first();
  start();
})(window, document);

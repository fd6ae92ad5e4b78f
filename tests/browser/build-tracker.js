#!/usr/bin/env node
// Minifies assets/tracker.js into assets/tracker.min.js (what GET /t.js serves;
// the server embeds it with include_str!, so the output is committed).
//   node build-tracker.js           write assets/tracker.min.js
//   node build-tracker.js --check   exit 1 if the committed file is stale
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { minify } = require('terser');

const assets = path.join(__dirname, '..', '..', 'assets');
const src = path.join(assets, 'tracker.js');
const out = path.join(assets, 'tracker.min.js');
// Kept in the served file: what a site owner sees when they open /t.js.
const BANNER = '/*! tally: no cookies, no fingerprinting; localStorage only for your opt-out */\n';

async function build() {
  const r = await minify(fs.readFileSync(src, 'utf8'), {
    ecma: 5,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: false, ecma: 5 },
  });
  return BANNER + r.code + '\n';
}

module.exports = { build, out };

if (require.main === module) {
  build().then((code) => {
    if (process.argv.includes('--check')) {
      const cur = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
      if (cur !== code) {
        console.error('assets/tracker.min.js is stale: run `npm run build` in tests/browser');
        process.exit(1);
      }
      console.log('assets/tracker.min.js is up to date');
    } else {
      fs.writeFileSync(out, code);
      console.log(`wrote ${path.relative(process.cwd(), out)} (${Buffer.byteLength(code)} bytes)`);
    }
  }).catch((e) => { console.error(e); process.exit(1); });
}

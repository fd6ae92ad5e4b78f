//! Personal-data scrubbing: e-mail addresses, BSNs, IBANs, phone numbers, UUIDs, long numbers
//! and secret-looking tokens in page paths, kept query values and referrer hosts.
//!
//! `page_url` already drops the fragment and every query parameter not on the allow-list, but the
//! path itself can still hold personal data: `/contact/jan.jansen%40gmail.com`,
//! `/burger/123456782`, a password-reset link. This module replaces such a piece with a placeholder
//! that says what was there (`:email`, `:uuid`, `:iban`, `:bsn`, `:phone`, `:token`, `:number`)
//! and leaves every other byte as it was. Per-site rewrite rules ([`Rules`]) run first; the
//! built-in scrubbing always runs on their result, so a rule can coarsen a path but never bring
//! data back.
//!
//! # How a path is read
//!
//! The path is cut at `/` into segments (a hash-mode route `/app#/x` too: `#` just sits inside
//! a segment). Each segment is percent-decoded for classification only (`%XX`; `+` is a literal
//! plus in a path), and what is replaced is mapped back onto the original bytes, so the rest of
//! the segment stays byte-identical, still encoded. Inside a segment, an *atom* is a run of ASCII
//! letters and digits; everything else separates atoms. Only the personal piece is replaced,
//! not the segment: `/order_123456782` → `/order_:bsn`, `/user=NL91ABNA0417164300` →
//! `/user=:iban`. A piece may span several atoms when it is written with its usual separators
//! (`06-12345678`, `NL91 ABNA 0417 1643 00`, `1234.56.782`, UUIDs, JWTs).
//!
//! One deliberate exception: an e-mail's local part may itself contain `.`, `-`, `_`, `+` and
//! `'`, so a word joined to it by those is taken along (`/reset-jan.jansen@gmail.com` →
//! `/:email`). Losing the word `reset` costs a little report detail; stopping at the `-` would
//! keep `jan` of `jan-willem.de-vries@…`.
//!
//! # Order
//!
//! E-mail first (it is found from its `@`, and its parts would otherwise be read as words and
//! numbers), then UUID, IBAN, BSN, phone — the shapes with a fixed structure or a checksum, so
//! they get their own name — then token, then number. A UUID or IBAN is also high-entropy and
//! a BSN or phone number is also a long digit run: checking the specific class first gives the
//! specific placeholder; `:token` and `:number` are the catch-alls.
//!
//! # Invariants
//!
//! No allocation when nothing is replaced (the input comes back as `Cow::Borrowed`), one linear
//! pass per class over each segment, no regular expressions, no panics on any input. Scrubbing
//! is idempotent: a placeholder is always a `:` plus lowercase letters with no letter or digit
//! glued after it, so it never takes part in a match, and token candidates are judged in the
//! pieces they will be in once long numbers around them are placeholders.

use std::borrow::Cow;

/// Digit runs this long or longer are `:number`: 4-digit years and postcodes and 5-digit postal
/// codes, house numbers, page numbers and article numbers below 100 000 stay; customer, case,
/// order and account numbers (and 8-digit dates like `20260329`, which can be birth dates) go.
const MIN_NUMBER_DIGITS: usize = 6;
/// A single atom of hex digits (with at least one digit and one letter) this long is a `:token`:
/// 64-bit ids and longer digests, session ids (`;jsessionid=…`) and hashes.
const MIN_HEX_TOKEN: usize = 16;
/// Any other token candidate must be at least this many bytes (separators included) …
const MIN_TOKEN_LEN: usize = 20;
/// … hold at least this many letters and digits …
const MIN_TOKEN_ALNUM: usize = 16;
/// … in atoms of this mean length or more: readable slugs are many short words
/// (`rtx-4090-24gb-gddr6x`), random strings have long atoms with a rare `-` or `_` …
const MIN_TOKEN_MEAN_ATOM: usize = 5;
/// … and score at least this many "random events" per 10 adjacent letter/digit pairs (see
/// [`looks_random`]). Calibrated on random strings of 20–64 characters from nine alphabets (hex,
/// base32 upper and lower, Crockford, base36 upper and lower, base58, base62, base64url): with
/// 3/10 at most 5 % of 20–22-character strings are missed and under 1.5 % from 32 characters
/// on (base62/58: under 0.2 %), while Dutch and English slugs with years, model numbers and
/// versions (`covid19vaccinatie2021`, `x86_64-unknown-linux-gnu`, `kamerstuk36410XVnr12motie`)
/// stay. Known over-scrubbing: CamelCase product names of 20+ characters with digits glued in
/// (`MacBookAir13inchM2chip2022`), which URL slugs rarely are.
const TOKEN_SCORE_PER_10_PAIRS: usize = 3;
/// Whole-word atoms of this many letters or more are trimmed from the ends of a token candidate,
/// so `/reset-<token>` becomes `/reset-:token` and `<token>.pdf` becomes `:token.pdf`. Shorter
/// ones stay: one or two letters at the edge of a random string read as "words" by chance.
const MIN_TRIMMED_WORD: usize = 3;

/// What a piece of personal data was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Email,
    Uuid,
    Iban,
    Bsn,
    Phone,
    Token,
    Number,
}

impl Class {
    fn placeholder(self) -> &'static str {
        match self {
            Class::Email => ":email",
            Class::Uuid => ":uuid",
            Class::Iban => ":iban",
            Class::Bsn => ":bsn",
            Class::Phone => ":phone",
            Class::Token => ":token",
            Class::Number => ":number",
        }
    }
}

/// A piece to replace, in byte offsets of the percent-decoded segment.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    class: Class,
}

/// Replaces the personal data in a page path (as `Url::path()` gives it, percent-encoded) by
/// placeholders; every other byte is kept. Borrowed when nothing was found.
pub fn scrub_path(path: &str) -> Cow<'_, str> {
    scrub_pieces(path, true)
}

/// Replaces the personal data in an allow-listed query value (`utm_campaign=…`) by placeholders,
/// with the same classes and rules as a path segment (`/` is just another separator here).
/// Borrowed when nothing was found.
pub fn scrub_value(value: &str) -> Cow<'_, str> {
    scrub_pieces(value, false)
}

/// Whether a referrer host carries personal data in one of its labels (an e-mail-like, UUID,
/// phone number, BSN, long number or token label, e.g. `0612345678.example.nl` or
/// `123456782.example.org`). The caller then drops the referrer (stores it empty): a host cannot
/// be partly kept.
///
/// None of the hosts that send real traffic is flagged (see the tests). Punycode labels
/// (`xn--…`) are never judged as tokens: their random-looking tail is the encoding of a readable
/// name. IP-address hosts are not flagged: their labels are at most three digits, and the address
/// is that of the referring server, not of the visitor.
pub fn host_is_personal(host: &str) -> bool {
    host.split('.').any(|label| {
        let punycode = label
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("xn--"));
        !piece_spans(label.as_bytes(), !punycode).is_empty()
    })
}

/// Scrubs `s` piece by piece: the pieces are the `/`-separated segments, or all of `s`.
fn scrub_pieces(s: &str, split_at_slash: bool) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut start = 0;
    loop {
        let end = if split_at_slash {
            s[start..].find('/').map_or(s.len(), |i| start + i)
        } else {
            s.len()
        };
        let piece = &s[start..end];
        let spans = piece_spans(piece.as_bytes(), true);
        if !spans.is_empty() {
            let o = out.get_or_insert_with(|| {
                let mut o = String::with_capacity(s.len() + 16);
                o.push_str(&s[..start]);
                o
            });
            write_replaced(piece, &spans, o);
        } else if let Some(o) = out.as_mut() {
            o.push_str(piece);
        }
        if end >= s.len() {
            break;
        }
        if let Some(o) = out.as_mut() {
            o.push('/');
        }
        start = end + 1;
    }
    match out {
        Some(o) => Cow::Owned(o),
        None => Cow::Borrowed(s),
    }
}

/// The value of an ASCII hex digit.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The decoded byte at `i` and how many input bytes it takes: `%XX` is one byte; anything else,
/// a lone `%` included, stands for itself.
fn decode_at(b: &[u8], i: usize) -> (u8, usize) {
    if b[i] == b'%' {
        let hi = b.get(i + 1).copied().and_then(hex_value);
        let lo = b.get(i + 2).copied().and_then(hex_value);
        if let (Some(hi), Some(lo)) = (hi, lo) {
            return (hi * 16 + lo, 3);
        }
    }
    (b[i], 1)
}

/// The personal-data spans of one piece, in decoded offsets, sorted. Decodes on the stack for
/// ordinary segment lengths, so an unchanged path costs no allocation even when encoded.
fn piece_spans(piece: &[u8], tokens: bool) -> Vec<Span> {
    if !piece.contains(&b'%') {
        return find_spans(piece, tokens);
    }
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if piece.len() <= stack.len() {
        &mut stack
    } else {
        heap.resize(piece.len(), 0);
        &mut heap
    };
    let (mut i, mut n) = (0, 0);
    while i < piece.len() {
        let (byte, used) = decode_at(piece, i);
        buf[n] = byte;
        n += 1;
        i += used;
    }
    find_spans(&buf[..n], tokens)
}

/// Appends `piece` with its spans (decoded offsets) replaced by their placeholders, copying every
/// other byte from the original, encoded, piece.
fn write_replaced(piece: &str, spans: &[Span], out: &mut String) {
    let b = piece.as_bytes();
    let (mut i, mut k) = (0, 0); // original and decoded offsets
    let mut copied = 0;
    let mut next = 0;
    let mut open = false;
    loop {
        while let Some(sp) = spans.get(next) {
            if !open && k == sp.start {
                // Span edges sit next to ASCII bytes, so these are char boundaries; `get` keeps
                // it panic-free regardless (and dropping text errs on the private side).
                out.push_str(piece.get(copied..i).unwrap_or(""));
                open = true;
            }
            if open && k == sp.end {
                out.push_str(sp.class.placeholder());
                copied = i;
                open = false;
                next += 1;
                continue;
            }
            break;
        }
        if i >= b.len() {
            break;
        }
        i += decode_at(b, i).1;
        k += 1;
    }
    if !open {
        out.push_str(piece.get(copied..).unwrap_or(""));
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether `d[i]` exists and is a letter or digit (an atom does not end at `i`).
fn alnum_at(d: &[u8], i: usize) -> bool {
    d.get(i).copied().is_some_and(is_alnum)
}

/// End of the atom starting at `i`.
fn atom_end(d: &[u8], mut i: usize) -> usize {
    while i < d.len() && is_alnum(d[i]) {
        i += 1;
    }
    i
}

/// End of the digit run starting at `i`.
fn digits_end(d: &[u8], mut i: usize) -> usize {
    while i < d.len() && d[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// All spans of a decoded piece: e-mails first, then the rest of each stretch between them.
fn find_spans(d: &[u8], tokens: bool) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut free = 0;
    let mut i = 0;
    while let Some(off) = d[i..].iter().position(|&b| b == b'@') {
        let at = i + off;
        match email_at(d, free, at) {
            Some((s, e)) => {
                scan_region(d, free, s, tokens, &mut spans);
                spans.push(Span {
                    start: s,
                    end: e,
                    class: Class::Email,
                });
                free = e;
                i = e;
            }
            None => i = at + 1,
        }
        if i >= d.len() {
            break;
        }
    }
    scan_region(d, free, d.len(), tokens, &mut spans);
    if spans.len() > 1 {
        spans.sort_unstable_by_key(|s| s.start);
    }
    spans
}

/// The e-mail address around the `@` at `at`, not reaching before `lo`: a local part of letters,
/// digits, `.`, `_`, `-`, `+`, `'` or non-ASCII; a domain of at least two labels whose last one
/// (up to where its letters end) has two or more letters. The span runs on to the end of the
/// atom it ends in, so its placeholder is never glued to what follows (`jan@x.nl2026` → `:email`).
fn email_at(d: &[u8], lo: usize, at: usize) -> Option<(usize, usize)> {
    let is_local =
        |b: u8| is_alnum(b) || matches!(b, b'.' | b'_' | b'-' | b'+' | b'\'') || b >= 0x80;
    let mut s = at;
    while s > lo && is_local(d[s - 1]) {
        s -= 1;
    }
    if !d[s..at].iter().any(|&b| is_alnum(b) || b >= 0x80) {
        return None;
    }
    let is_domain = |b: u8| is_alnum(b) || b == b'.' || b == b'-' || b >= 0x80;
    let first = at + 1;
    let mut run_end = first;
    while run_end < d.len() && is_domain(d[run_end]) {
        run_end += 1;
    }
    if first >= run_end || !(is_alnum(d[first]) || d[first] >= 0x80) {
        return None;
    }
    // The last dot that is followed by a top-level domain of two letters or more.
    let mut p = run_end;
    while p > first + 1 {
        p -= 1;
        if d[p] != b'.' || matches!(d[p - 1], b'.' | b'-') {
            continue;
        }
        let mut q = p + 1;
        while q < run_end && d[q].is_ascii_alphabetic() {
            q += 1;
        }
        if q - (p + 1) >= 2 {
            return Some((s, atom_end(d, q)));
        }
    }
    None
}

/// Scans `d[lo..hi]` (no e-mail inside) for the structured classes, then the rest for tokens and
/// numbers.
fn scan_region(d: &[u8], lo: usize, hi: usize, tokens: bool, spans: &mut Vec<Span>) {
    if lo >= hi {
        return;
    }
    let r = &d[lo..hi];
    let first = spans.len();
    let mut i = 0;
    while i < r.len() {
        if !is_alnum(r[i]) {
            i += 1;
            continue;
        }
        // `i` starts an atom here: the byte before is a separator or the region's edge.
        if let Some((s, e, class)) = structured_at(r, i) {
            spans.push(Span {
                start: lo + s,
                end: lo + e,
                class,
            });
            i = e;
        } else {
            i = atom_end(r, i);
        }
    }
    let last = spans.len();
    let mut prev = lo;
    let mut k = first;
    while k < last {
        let sp = spans[k];
        loose_region(d, prev, sp.start, tokens, spans);
        prev = sp.end;
        k += 1;
    }
    loose_region(d, prev, hi, tokens, spans);
}

/// A UUID, IBAN, BSN or phone number starting with the atom at `r[i]`: `(start, end, class)`.
/// Every match ends at the end of an atom.
fn structured_at(r: &[u8], i: usize) -> Option<(usize, usize, Class)> {
    if let Some(e) = uuid_at(r, i) {
        return Some((i, e, Class::Uuid));
    }
    if let Some(e) = iban_at(r, i) {
        return Some((i, e, Class::Iban));
    }
    if let Some(e) = bsn_at(r, i) {
        return Some((i, e, Class::Bsn));
    }
    phone_at(r, i).map(|(s, e)| (s, e, Class::Phone))
}

/// `8-4-4-4-12` hex digits, any case.
fn uuid_at(r: &[u8], i: usize) -> Option<usize> {
    let mut p = i;
    for (k, n) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if k > 0 {
            if r.get(p) != Some(&b'-') {
                return None;
            }
            p += 1;
        }
        let end = p + n;
        if end > r.len() || !r[p..end].iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        p = end;
    }
    (!alnum_at(r, p)).then_some(p)
}

/// IBAN lengths per country code (SWIFT IBAN registry). A country not listed is accepted at any
/// IBAN length (15–34): a missing entry must not let an account number through.
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// Two letters, two digits, then letters and digits, written together or in groups separated by
/// single spaces (`%20`) or `-`; 15–34 characters, the country's length when known, and
/// mod-97 = 1. Case-insensitive. The longest valid reading wins.
fn iban_at(r: &[u8], i: usize) -> Option<usize> {
    let head = r.get(i..i + 4)?;
    if !(head[0].is_ascii_alphabetic()
        && head[1].is_ascii_alphabetic()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
    {
        return None;
    }
    let mut chars = [0u8; 34];
    let mut n = 0;
    let mut ends = [(0usize, 0usize); 12]; // (end offset, characters so far)
    let mut count = 0;
    let mut p = i;
    loop {
        let e = atom_end(r, p);
        if n + (e - p) > chars.len() || count == ends.len() {
            break;
        }
        for &b in &r[p..e] {
            chars[n] = b.to_ascii_uppercase();
            n += 1;
        }
        ends[count] = (e, n);
        count += 1;
        match (r.get(e), r.get(e + 1)) {
            (Some(b' ' | b'-'), Some(&c)) if is_alnum(c) => p = e + 1,
            _ => break,
        }
    }
    ends[..count]
        .iter()
        .rev()
        .find(|&&(_, n)| iban_valid(&chars[..n]))
        .map(|&(e, _)| e)
}

/// Checks an upper-cased, separator-free IBAN candidate.
fn iban_valid(s: &[u8]) -> bool {
    if !(15..=34).contains(&s.len()) {
        return false;
    }
    if let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(cc, _)| cc[..] == s[..2]) {
        if len != s.len() {
            return false;
        }
    }
    // ISO 7064 mod 97-10: the first four characters move to the end, letters count as 10–35.
    let mut rem: u32 = 0;
    for &c in s[4..].iter().chain(&s[..4]) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    rem == 1
}

/// A BSN: a 9-digit atom, or 9 digits grouped `1234.56.782` or `123 456 782` (one separator
/// throughout: `.`, `-` or space), passing the 11-proef. Eight-digit numbers (a BSN with its
/// leading zero dropped) are not called `:bsn` — one in eleven of all 8-digit numbers passes the
/// check — but they are `:number` anyway.
fn bsn_at(r: &[u8], i: usize) -> Option<usize> {
    let e = digits_end(r, i);
    if e - i == 9 && !alnum_at(r, e) {
        return bsn_valid(&r[i..e]).then_some(e);
    }
    for shape in [[4, 2, 3], [3, 3, 3]] {
        let mut digits = [0u8; 9];
        let mut n = 0;
        let mut p = i;
        let mut sep = None;
        let mut ok = true;
        for (k, len) in shape.into_iter().enumerate() {
            if k > 0 {
                let s = r.get(p).copied();
                if !matches!(s, Some(b'.' | b'-' | b' ')) || (sep.is_some() && sep != s) {
                    ok = false;
                    break;
                }
                sep = s;
                p += 1;
            }
            let e = digits_end(r, p);
            if e - p != len {
                ok = false;
                break;
            }
            digits[n..n + len].copy_from_slice(&r[p..e]);
            n += len;
            p = e;
        }
        if ok && !alnum_at(r, p) && bsn_valid(&digits) {
            return Some(p);
        }
    }
    None
}

/// The 11-proef on nine ASCII digits: 9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 (mod 11), not all zeros.
fn bsn_valid(d: &[u8]) -> bool {
    if d.len() != 9 || d.iter().all(|&b| b == b'0') {
        return false;
    }
    let sum: i32 = d
        .iter()
        .zip([9, 8, 7, 6, 5, 4, 3, 2, -1])
        .map(|(&b, w)| i32::from(b - b'0') * w)
        .sum();
    sum.rem_euclid(11) == 0
}

/// A phone number: groups of digits (whole atoms) separated by single `-`, `.` or spaces,
/// optionally after a `+`, judged by [`is_phone`]. The longest valid reading wins.
fn phone_at(r: &[u8], i: usize) -> Option<(usize, usize)> {
    let plus = i > 0 && r[i - 1] == b'+';
    let mut digits = [0u8; 17];
    let mut n = 0;
    let mut groups = [0usize; 8];
    let mut ends = [(0usize, 0usize); 8]; // (end offset, digits so far), one per group
    let mut count = 0;
    let mut p = i;
    loop {
        let e = digits_end(r, p);
        if e == p || alnum_at(r, e) || n + (e - p) > digits.len() || count == groups.len() {
            break;
        }
        digits[n..n + (e - p)].copy_from_slice(&r[p..e]);
        n += e - p;
        groups[count] = e - p;
        ends[count] = (e, n);
        count += 1;
        match (r.get(e), r.get(e + 1)) {
            (Some(b'-' | b'.' | b' '), Some(c)) if c.is_ascii_digit() => p = e + 1,
            _ => break,
        }
    }
    (1..=count)
        .rev()
        .find(|&g| is_phone(&digits[..ends[g - 1].1], plus, &groups[..g]))
        .map(|g| (if plus { i - 1 } else { i }, ends[g - 1].0))
}

/// Whether digits (with their group lengths) read as a phone number:
/// - after `+`: E.164, 8–15 digits including the country code;
/// - `00` then a country code (not `000`): 10–17 digits;
/// - Dutch national: 10 digits, `0` then not `0` (`0612345678`, `0201234567`, `085-1234567`);
///   grouped, the first group is an area code (3 or 4 digits) or `06`;
/// - North American, grouped `555-123-4567`: 3-3-4 with area code and exchange not starting
///   with 0 or 1.
///
/// Dates (`2026-03-29`, `29-03-2026`), postcodes, years, versions and house numbers have too few
/// digits or the wrong first digit; a 6+-digit run that is not a phone is still `:number`.
fn is_phone(d: &[u8], plus: bool, groups: &[usize]) -> bool {
    let n = d.len();
    if plus {
        return (8..=15).contains(&n);
    }
    if n >= 10 && d.starts_with(b"00") {
        return d[2] != b'0' && n <= 17;
    }
    if n == 10 && d[0] == b'0' && d[1] != b'0' {
        return match groups {
            [_] => true,
            [first, ..] => *first == 3 || *first == 4 || (*first == 2 && d[1] == b'6'),
            [] => false,
        };
    }
    groups == [3, 3, 4] && d[0] >= b'2' && d[3] >= b'2'
}

/// Tokens, then numbers, in a stretch with no e-mail or structured match inside.
fn loose_region(d: &[u8], lo: usize, hi: usize, tokens: bool, spans: &mut Vec<Span>) {
    if lo >= hi {
        return;
    }
    let first = spans.len();
    if tokens {
        let mut i = lo;
        while i < hi {
            if !is_token_byte(d[i]) {
                i += 1;
                continue;
            }
            let s = i;
            while i < hi && is_token_byte(d[i]) {
                i += 1;
            }
            token_run(d, s, i, spans);
        }
    }
    let last = spans.len();
    let mut prev = lo;
    let mut k = first;
    while k < last {
        let sp = spans[k];
        number_spans(d, prev, sp.start, spans);
        prev = sp.end;
        k += 1;
    }
    number_spans(d, prev, hi, spans);
}

/// Characters a token candidate is made of: base64url, plus `.` for JWTs (`header.payload.sig`).
fn is_token_byte(b: u8) -> bool {
    is_alnum(b) || matches!(b, b'-' | b'_' | b'.')
}

/// Judges the run `d[s..e]` of token characters. When it is not a token as a whole, the parts
/// between its long numbers are judged alone, as a second scrub would see them once those
/// numbers are placeholders.
fn token_run(d: &[u8], s: usize, e: usize, spans: &mut Vec<Span>) {
    if let Some((a, b)) = token_in(d, s, e) {
        spans.push(Span {
            start: a,
            end: b,
            class: Class::Token,
        });
        return;
    }
    let mut part = s;
    let mut split = false;
    while let Some((ns, ne, _)) = next_number(d, part, e) {
        if let Some((a, b)) = token_in(d, part, ns) {
            spans.push(Span {
                start: a,
                end: b,
                class: Class::Token,
            });
        }
        part = ne;
        split = true;
    }
    if split {
        if let Some((a, b)) = token_in(d, part, e) {
            spans.push(Span {
                start: a,
                end: b,
                class: Class::Token,
            });
        }
    }
}

/// An atom that reads as a word: letters only, of at least [`MIN_TRIMMED_WORD`], lower case,
/// capitalised or all capitals.
fn is_word(a: &[u8]) -> bool {
    a.len() >= MIN_TRIMMED_WORD
        && a.iter().all(u8::is_ascii_alphabetic)
        && (a[1..].iter().all(u8::is_ascii_lowercase) || a.iter().all(u8::is_ascii_uppercase))
}

/// The token inside `d[s..e]`, if any: from its first to its last atom that is not a word.
fn token_in(d: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    let mut i = s;
    let mut start = None;
    while i < e {
        if !is_alnum(d[i]) {
            i += 1;
            continue;
        }
        let a = i;
        while i < e && is_alnum(d[i]) {
            i += 1;
        }
        if !is_word(&d[a..i]) {
            start = Some(a);
            break;
        }
    }
    let start = start?;
    let mut j = e;
    let mut end = None;
    while j > start {
        if !is_alnum(d[j - 1]) {
            j -= 1;
            continue;
        }
        let b = j;
        while j > start && is_alnum(d[j - 1]) {
            j -= 1;
        }
        if !is_word(&d[j..b]) {
            end = Some(b);
            break;
        }
    }
    let end = end?;
    looks_random(&d[start..end]).then_some((start, end))
}

fn is_consonant(b: u8) -> bool {
    b.is_ascii_alphabetic() && !matches!(b.to_ascii_lowercase(), b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
}

/// Whether a candidate (trimmed of words at both ends) is a random string rather than text.
///
/// A hex atom of [`MIN_HEX_TOKEN`]+ characters with digits and letters always is. Otherwise it
/// needs the length, letters-and-digits and mean-atom-length minimums above and enough "random
/// events" between adjacent characters of an atom: a switch between letter and digit, a
/// lower-to-upper-case hump, and every third-or-later consonant in a row. Readable text switches
/// class only around its few numbers, humps only between CamelCase words and rarely stacks three
/// consonants; random strings do all three at every few characters whatever their alphabet
/// (the consonant rule is what catches lower-case base32/base36 session ids, which have few
/// digits and no case).
fn looks_random(s: &[u8]) -> bool {
    let (mut alnum, mut atoms, mut pairs, mut events) = (0usize, 0usize, 0usize, 0usize);
    let (mut digits, mut letters, mut hex) = (0usize, 0usize, true);
    let mut prev: Option<u8> = None;
    let mut consonants = 0;
    for &b in s {
        if !is_alnum(b) {
            prev = None;
            consonants = 0;
            continue;
        }
        alnum += 1;
        if b.is_ascii_digit() {
            digits += 1;
        } else {
            letters += 1;
        }
        hex &= b.is_ascii_hexdigit();
        match prev {
            None => atoms += 1,
            Some(p) => {
                pairs += 1;
                if p.is_ascii_digit() != b.is_ascii_digit() {
                    events += 1;
                }
                if p.is_ascii_lowercase() && b.is_ascii_uppercase() {
                    events += 1;
                }
            }
        }
        if is_consonant(b) {
            consonants += 1;
            if consonants >= 3 {
                events += 1;
            }
        } else {
            consonants = 0;
        }
        prev = Some(b);
    }
    if atoms == 1 && hex && alnum >= MIN_HEX_TOKEN && digits > 0 && letters > 0 {
        return true;
    }
    s.len() >= MIN_TOKEN_LEN
        && alnum >= MIN_TOKEN_ALNUM
        && alnum >= MIN_TOKEN_MEAN_ATOM * atoms
        && pairs > 0
        && events * 10 >= pairs * TOKEN_SCORE_PER_10_PAIRS
}

/// The first long number at or after `i` (an atom boundary) before `hi`: from the start of a run
/// of [`MIN_NUMBER_DIGITS`]+ digits to the end of its atom (`klant123456x` → `klant:number`,
/// so the placeholder is never glued to letters), with the class of the digit run.
fn next_number(d: &[u8], mut i: usize, hi: usize) -> Option<(usize, usize, Class)> {
    while i < hi {
        if !d[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let s = i;
        while i < hi && d[i].is_ascii_digit() {
            i += 1;
        }
        if i - s >= MIN_NUMBER_DIGITS {
            let run = &d[s..i];
            let class = if bsn_valid(run) {
                Class::Bsn
            } else if is_phone(run, false, &[run.len()]) {
                Class::Phone
            } else {
                Class::Number
            };
            let mut e = i;
            while e < hi && is_alnum(d[e]) {
                e += 1;
            }
            return Some((s, e, class));
        }
    }
    None
}

/// All long numbers in `d[lo..hi]`.
fn number_spans(d: &[u8], lo: usize, hi: usize, spans: &mut Vec<Span>) {
    let mut i = lo;
    while let Some((start, end, class)) = next_number(d, i, hi) {
        spans.push(Span { start, end, class });
        i = end;
    }
}

/// One segment of a rewrite pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Matches this exact (still percent-encoded) segment.
    Literal(String),
    /// `*`: any one non-empty segment.
    One,
    /// `**`: one or more segments, the rest of the path.
    Rest,
}

/// A per-site rewrite rule, e.g. `/zaken/*` → `/zaken/:id`.
///
/// Pattern: starts with `/`; `*` matches exactly one non-empty segment, `**` (only as the last
/// segment) one or more; other segments match literally, byte for byte against the
/// percent-encoded path (write `%C3%A9`, not `é`). One trailing `/` of the path is ignored when
/// matching, so `/zaken/*` matches `/zaken/123/` too.
///
/// Replacement: starts with `/`; segments are literal or placeholders `:[a-z_]+` (`:id`). It may
/// end in `/**` when the pattern does: the segments `**` matched are then kept
/// (`/users/*/**` → `/users/:id/**` turns `/users/jan/settings` into `/users/:id/settings`);
/// they still go through the built-in scrubbing like everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pattern: Vec<Part>,
    /// The replacement, without a trailing `/**`.
    replacement: String,
    keep_rest: bool,
}

impl Rule {
    /// Parses one `pattern` → `replacement` pair; the error says what is wrong.
    pub fn parse(pattern: &str, replacement: &str) -> Result<Rule, String> {
        let body = pattern
            .strip_prefix('/')
            .ok_or_else(|| format!("pattern {pattern:?} must start with '/'"))?;
        let body = body.strip_suffix('/').unwrap_or(body);
        let mut parts = Vec::new();
        if !body.is_empty() {
            let segments: Vec<&str> = body.split('/').collect();
            for (k, seg) in segments.iter().enumerate() {
                let part = match *seg {
                    "**" if k + 1 == segments.len() => Part::Rest,
                    "**" => {
                        return Err(format!(
                            "pattern {pattern:?}: '**' may only be the last segment (and appear once)"
                        ))
                    }
                    "*" => Part::One,
                    _ => {
                        check_literal(seg, "pattern", pattern)?;
                        if seg.starts_with(':') {
                            return Err(format!(
                                "pattern {pattern:?}: segment {seg:?} starts with ':'; \
                                 placeholders belong in the replacement, use '*' to match any segment"
                            ));
                        }
                        Part::Literal((*seg).to_string())
                    }
                };
                parts.push(part);
            }
        }
        let rbody = replacement
            .strip_prefix('/')
            .ok_or_else(|| format!("replacement {replacement:?} must start with '/'"))?;
        let (rbody, keep_rest) = match rbody.strip_suffix("**") {
            Some(head) if head.is_empty() || head.ends_with('/') => {
                if parts.last() != Some(&Part::Rest) {
                    return Err(format!(
                        "replacement {replacement:?} may only end in '**' when the pattern does"
                    ));
                }
                (head.strip_suffix('/').unwrap_or(head), true)
            }
            _ => (rbody, false),
        };
        let rtrimmed = rbody.strip_suffix('/').unwrap_or(rbody);
        if !rtrimmed.is_empty() {
            for seg in rtrimmed.split('/') {
                if let Some(name) = seg.strip_prefix(':') {
                    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                        return Err(format!(
                            "replacement {replacement:?}: placeholder {seg:?} must look like ':name' \
                             (a-z and '_' only)"
                        ));
                    }
                } else {
                    check_literal(seg, "replacement", replacement)?;
                    if seg.contains(':') {
                        return Err(format!(
                            "replacement {replacement:?}: ':' is only allowed at the start of a \
                             placeholder segment, not in {seg:?}"
                        ));
                    }
                }
            }
        }
        Ok(Rule {
            pattern: parts,
            replacement: format!("/{rbody}"),
            keep_rest,
        })
    }

    /// The rewritten path when this rule matches `path`.
    pub fn rewrite(&self, path: &str) -> Option<String> {
        let body = path.strip_prefix('/')?;
        let trimmed = body.strip_suffix('/').unwrap_or(body);
        let mut remaining = (!trimmed.is_empty()).then_some(trimmed);
        let mut rest = None;
        for part in &self.pattern {
            let r = remaining?;
            if *part == Part::Rest {
                if r.is_empty() {
                    return None;
                }
                // From `body`, so a trailing slash of the path is kept with the rest.
                rest = Some(&body[trimmed.len() - r.len()..]);
                remaining = None;
                break;
            }
            let (head, tail) = match r.find('/') {
                Some(k) => (&r[..k], Some(&r[k + 1..])),
                None => (r, None),
            };
            let ok = match part {
                Part::Literal(l) => head == l,
                _ => !head.is_empty(),
            };
            if !ok {
                return None;
            }
            remaining = tail;
        }
        if remaining.is_some() {
            return None;
        }
        let mut out = self.replacement.clone();
        if let (true, Some(rest)) = (self.keep_rest, rest) {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(rest);
        }
        Some(out)
    }
}

/// Literal pattern and replacement segments: not empty, ASCII, no whitespace, `*`, `?`.
fn check_literal(seg: &str, what: &str, whole: &str) -> Result<(), String> {
    if seg.is_empty() {
        return Err(format!("{what} {whole:?} has an empty segment ('//')"));
    }
    if seg.contains('*') {
        return Err(format!(
            "{what} {whole:?}: '*' and '**' must be whole segments, not part of {seg:?}{}",
            if what == "replacement" {
                " (a replacement has no '*'; use a placeholder like ':id')"
            } else {
                ""
            }
        ));
    }
    if !seg.is_ascii() {
        return Err(format!(
            "{what} {whole:?}: write non-ASCII characters percent-encoded, as in the page URL \
             (%C3%A9 for é), not in {seg:?}"
        ));
    }
    if seg.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?') {
        return Err(format!(
            "{what} {whole:?}: segment {seg:?} contains whitespace, a control character or '?'"
        ));
    }
    Ok(())
}

/// A site's rewrite rules, tried in order before the built-in scrubbing; the first match wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rules {
    /// Parses `(pattern, replacement)` pairs as the config gives them; the error names the rule
    /// (1-based) and what is wrong with it.
    pub fn parse(pairs: &[(String, String)]) -> Result<Rules, String> {
        let rules = pairs
            .iter()
            .enumerate()
            .map(|(k, (p, r))| {
                Rule::parse(p, r).map_err(|e| format!("rewrite rule {} ({p:?} -> {r:?}): {e}", k + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The first matching rule's rewrite of `path` (or `path` itself), then [`scrub_path`].
    /// Borrowed when no rule matched and nothing was scrubbed.
    pub fn apply<'a>(&self, path: &'a str) -> Cow<'a, str> {
        let Some(rewritten) = self.rules.iter().find_map(|r| r.rewrite(path)) else {
            return scrub_path(path);
        };
        if let Cow::Owned(scrubbed) = scrub_path(&rewritten) {
            return Cow::Owned(scrubbed);
        }
        Cow::Owned(rewritten)
    }
}

#!/usr/bin/env python3
"""Write personal-data samples made by Faker (not stored in the repository) for the scrubbing test.

Usage: python3 scripts/pii_samples.py OUT.json

Faker's locale providers produce the formats real people have: Dutch BSNs that pass the
11-proef, IBANs of several countries with valid check digits, phone numbers as written in those
countries, e-mail addresses, UUIDs; plus real-looking path material that must survive (slugs,
dates, postcodes, years); tokens in the shapes session and reset tokens have (base64url, hex,
SHA-256, MD5). Everything is seeded, so every run tests the same samples (a flaky privacy test
helps no one); scripts/test.sh writes the file on every run. Faker lives in a virtualenv, $TALLY_CACHE/faker-venv (TALLY_CACHE defaults to
<repo>/.cache), created on first use with `pip install faker`; the script re-executes itself there.
"""
import base64
import json
import random
import sys
from pathlib import Path



def ensure_venv():
    """Re-exec inside the Faker virtualenv (created on first use) unless already there."""
    from venv_bootstrap import reexec_in_venv

    reexec_in_venv("faker-venv", "faker", __file__)


def phone_in_path(raw):
    """A phone number as it would appear in a URL path: no spaces or brackets."""
    out = raw.replace(" ", "").replace("(0)", "").replace("(", "").replace(")", "")
    return out.replace(".", "-")


def main(out):
    from faker import Faker

    Faker.seed(20261123)
    n = 200
    samples = {"email": [], "iban": [], "bsn": [], "phone": [], "uuid": [], "token": [],
               "number": [], "keep": []}
    nl = Faker("nl_NL")
    for locale in ["nl_NL", "de_DE", "en_GB", "fr_FR", "nl_BE"]:
        f = Faker(locale)
        for _ in range(n // 5):
            samples["email"].append(f.email())
            samples["email"].append(f.free_email())
            samples["iban"].append(f.iban())
            samples["phone"].append(phone_in_path(f.phone_number()))
            samples["keep"].append(f.slug())
            samples["keep"].append(f.uri_path())
            samples["keep"].append(f.date())
            samples["keep"].append(str(f.year()))
    for _ in range(n):
        samples["bsn"].append(nl.ssn())
        samples["uuid"].append(str(nl.uuid4()))
        samples["number"].append(str(nl.random_number(digits=nl.random_int(6, 12), fix_len=True)))
        samples["keep"].append(nl.postcode().replace(" ", ""))
        samples["keep"].append(f"{nl.word()}-{nl.random_int(1, 999)}")
    rng = random.Random(20261123)
    for _ in range(n // 4):
        samples["token"].append(base64.urlsafe_b64encode(rng.randbytes(24)).decode().rstrip("="))
        samples["token"].append(rng.randbytes(16).hex())
        samples["token"].append(nl.sha256())
        samples["token"].append(nl.md5())
    Path(out).write_text(json.dumps(samples, indent=1, ensure_ascii=False))
    print(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ensure_venv()
    main(sys.argv[1])

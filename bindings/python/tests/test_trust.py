# SPDX-License-Identifier: Apache-2.0
"""Trust.parse / Trust.load and verify_attestation's argument handling."""

import datetime

import pytest

import enclavia

PCR = "ab" * 48
GOOD = 'roots = ["aws-nitro"]\n[[accept]]\nPCR0 = "%s"\n' % PCR


def test_parse_a_good_policy():
    trust = enclavia.Trust.parse(GOOD)
    trust.set_time(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    trust.set_time(None)
    trust.close()
    trust.close()  # idempotent


def test_load_takes_relative_roots_from_the_files_folder(tmp_path):
    root = tmp_path / "root.pem"
    root.write_text("not a certificate\n")
    (tmp_path / "trust.toml").write_text('roots = ["root.pem"]\n[[accept]]\nPCR0 = "%s"\n' % PCR)
    # The PEM is found (relative to the trust file) but holds no certificate: that is the error,
    # not a missing file.
    with pytest.raises(enclavia.Error) as info:
        enclavia.Trust.load(tmp_path / "trust.toml")
    assert "root.pem" in str(info.value)
    with pytest.raises(enclavia.Error) as missing:
        enclavia.Trust.parse('roots = ["nope.pem"]\n[[accept]]\nPCR0 = "%s"\n' % PCR,
                             base_dir=tmp_path)
    assert "nope.pem" in str(missing.value)


@pytest.mark.parametrize(
    "text, status, needle",
    [
        ("roots = [", "malformed", "trust file"),  # not TOML
        ('[[accept]]\nPCR0 = "%s"\n' % PCR, "invalid_argument", "roots"),  # no roots
        ('roots = ["aws-nitro"]\n', "invalid_argument", "accept"),  # trusts nothing
        ('roots = ["aws-nitro"]\n[[accept]]\nPCR0 = "abc"\n', "invalid_argument", "PCR0"),
        ('roots = ["aws-nitro"]\nmax_age = "soon"\n[[accept]]\nPCR0 = "%s"\n' % PCR,
         "invalid_argument", "max_age"),
        ('roots = ["aws-nitro"]\n[[accept]]\n', "invalid_argument", "accept"),  # an empty set
    ],
)
def test_parse_errors_are_one_line_and_name_the_problem(text, status, needle):
    with pytest.raises(enclavia.Error) as info:
        enclavia.Trust.parse(text)
    message = str(info.value)
    assert needle in message, message
    assert "\n" not in message
    assert info.value.status == status, repr(info.value)
    assert type(info.value).__name__ == "".join(w.title() for w in status.split("_"))


def test_nul_in_text_is_invalid_argument():
    with pytest.raises(enclavia.InvalidArgument):
        enclavia.Trust.parse(GOOD + "\0")


def test_load_missing_file():
    with pytest.raises(enclavia.Error) as info:
        enclavia.Trust.load("/nonexistent/trust.toml")
    assert "/nonexistent/trust.toml" in str(info.value)


def test_verify_rejects_garbage_as_malformed():
    with pytest.raises(enclavia.Malformed):
        enclavia.verify_attestation(b"\x01\x02\x03", enclavia.Trust.parse(GOOD))


def test_verify_checks_fixed_sizes_before_calling():
    trust = enclavia.Trust.parse(GOOD)
    with pytest.raises(enclavia.InvalidArgument, match="public_key must be 32 bytes"):
        enclavia.verify_attestation(b"x", trust, public_key=b"short")
    with pytest.raises(enclavia.InvalidArgument, match="nonce must be 32 bytes"):
        enclavia.verify_attestation(b"x", trust, nonce=b"\0" * 31)


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        enclavia.Trust.parse(GOOD).set_time(datetime.datetime(2024, 1, 1))


def test_closed_trust_is_refused():
    trust = enclavia.Trust.parse(GOOD)
    trust.close()
    with pytest.raises(enclavia.FailedPrecondition, match="closed"):
        enclavia.verify_attestation(b"x", trust)

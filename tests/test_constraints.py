"""The distortion budget's parser (tune_vqvae.constraints): good strings, and every bad one a
UserError of one line naming the fix; the slack's sign in Optuna's convention (<= 0 feasible)."""

from __future__ import annotations

import pytest

from tune_vqvae.constraints import PERCENT, Constraint, parse
from tune_vqvae.errors import UserError


@pytest.mark.parametrize("text, expected", [
    ("val_psnr >= -0.2", Constraint("val_psnr", ">=", -0.2, "")),
    ("val_psnr>=-1%", Constraint("val_psnr", ">=", -1.0, PERCENT)),
    ("  val_ssim >= 0 ", Constraint("val_ssim", ">=", 0.0, "")),
    ("val_psnr >= -0.2 dB", Constraint("val_psnr", ">=", -0.2, "")),  # its own unit, said
    ("val_mse <= +5 %", Constraint("val_mse", "<=", 5.0, PERCENT)),
    ("fid <= 1e1", Constraint("fid", "<=", 10.0, "")),
])
def test_good_strings_parse_and_read_back(text, expected):
    assert parse(text) == expected
    assert parse(str(expected)) == expected  # str() is what search.json would keep


@pytest.mark.parametrize("text, fix", [
    ("psnr >= -0.2", "unknown metric 'psnr'; valid: fid, "),
    ("val_psnr > -0.2", "use >= or <="),
    ("val_psnr == 0", "use >= or <="),
    ("val_psnr >= abc", "amount 'abc' is not a finite number"),
    ("val_psnr >= nan", "not a finite number"),
    ("val_psnr >= inf%", "not a finite number"),
    ("val_psnr >=", "not a finite number"),
    ("val_psnr", "expected METRIC >= AMOUNT or METRIC <= AMOUNT[%]"),
    ("", "expected METRIC >= AMOUNT"),
    ("val_psnr >= -0.2 % dB", "expected METRIC >= AMOUNT"),
    ("val_ssim >= -2 pts", "unit 'pts': give the amount in val_ssim's own units or in %"),
    ("val_psnr <= -0.2", "higher is better, so a budget bounds it with >=, not <=; write 'val_psnr >= -0.2'"),
    ("val_mse >= 5%", "lower is better, so a budget bounds it with <=, not >=; write 'val_mse <= 5%'"),
])
def test_bad_strings_are_one_line_naming_the_fix(text, fix):
    with pytest.raises(UserError) as e:
        parse(text)
    message = str(e.value)
    assert fix in message and "\n" not in message
    assert message.startswith(f"--constraint {text!r}: ")


def test_slack_sign_in_optunas_convention():
    psnr = parse("val_psnr >= -0.2")  # >=, metric units: bound 24.8 dB
    assert psnr.threshold(25.0) == pytest.approx(24.8)
    assert psnr.slack(24.9, 25.0) == pytest.approx(-0.1) and psnr.satisfied(24.9, 25.0)
    assert psnr.slack(24.7, 25.0) == pytest.approx(0.1) and not psnr.satisfied(24.7, 25.0)
    assert parse("val_psnr >= -1%").slack(24.8, 25.0) == pytest.approx(24.75 - 24.8)  # 1% of 25 dB
    mse = parse("val_mse <= 10%")  # <=, percent: bound 0.022
    assert mse.slack(0.021, 0.02) == pytest.approx(-0.001) and mse.satisfied(0.021, 0.02)
    assert mse.slack(0.023, 0.02) == pytest.approx(0.001) and not mse.satisfied(0.023, 0.02)
    assert parse("val_mse <= 0.001").slack(0.0215, 0.02) == pytest.approx(0.0005)
    assert parse("val_ssim >= 0").satisfied(0.5, 0.5)  # on the bound: feasible (<= 0)


def test_percent_of_a_negative_or_zero_mean():
    c = parse("val_psnr >= -10%")
    assert c.threshold(-2.0) == pytest.approx(-2.2)  # of |mean|: still below the baseline
    with pytest.raises(UserError, match="give it in the metric's units"):
        c.slack(1.0, 0.0)


@pytest.mark.parametrize("text, said", [
    ("val_psnr >= -0.2", "val_psnr at most 0.2 dB below the MSE baseline's mean"),
    ("val_psnr >= 0.1", "val_psnr at least 0.1 dB above the MSE baseline's mean"),
    ("val_ssim >= 0", "val_ssim at least the MSE baseline's mean"),
    ("val_ssim >= -0.01", "val_ssim at most 0.01 below the MSE baseline's mean"),
    ("val_mse <= 5%", "val_mse at most 5% above the MSE baseline's mean"),
    ("val_mse <= -1%", "val_mse at least 1% below the MSE baseline's mean"),
])
def test_describe(text, said):
    assert parse(text).describe() == said

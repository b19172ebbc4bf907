"""How latent points are written in labels and the status bar."""
from app.z_text import z_number, z_pair


def test_three_decimals_and_no_negative_zero():
    assert z_pair(-0.0004, 0.0567) == "(0.000, 0.057)"  # "-0.000" read as a sign that meant
    assert z_number(-0.0, signed=True) == "+0.000" and z_number(-0.0006) == "-0.001"
    assert z_number(1.23456) == "1.235" and z_number(-2.5, signed=True) == "-2.500"


def test_huge_values_stay_short():
    assert z_number(1234567.0) == "1.235e+06" and z_number(-1e300, signed=True) == "-1e+300"

"""The calculator: a correctness table, an abuse table, and the tool through the registry."""

from __future__ import annotations

import time

import pytest

from agentplatform.tools.base import ToolContext, ToolRegistry
from agentplatform.tools.calculator import (
    MAX_EXPRESSION_CHARS,
    CalculationError,
    CalculatorTool,
    evaluate,
    format_number,
)

CONTEXT = ToolContext(user_id="u", conversation_id="c", run_id="r")

CORRECT = [
    ("1 + 2 * 3", "7"),
    ("(1 + 2) * 3", "9"),
    ("10 - 4 - 3", "3"),
    ("2 * 3 + 4 * 5", "26"),
    ("7 / 2", "3.5"),
    ("8 / 4", "2"),
    ("7 // 2", "3"),
    ("-7 // 2", "-4"),
    ("7 % 3", "1"),
    ("-7 % 3", "2"),
    ("5.5 % 2", "1.5"),
    ("2 ** 10", "1024"),
    ("2 ^ 10", "1024"),
    ("2 ** 3 ** 2", "512"),  # right-associative
    ("-2 ** 2", "-4"),  # unary minus binds looser than **
    ("(-2) ** 2", "4"),
    ("2 ** -1", "0.5"),
    ("--3", "3"),
    ("+3 - -3", "6"),
    ("0.1 + 0.2", "0.3"),
    (".5 + .25", "0.75"),
    ("1e3", "1000"),
    ("1.5E-3 * 2", "0.003"),
    ("2.5e2 + 1", "251"),
    ("12345678901234567890 * 98765432109876543210", "1219326311370217952237463801111263526900"),
    ("2 ** 100", "1267650600228229401496703205376"),
    ("sqrt(16)", "4"),
    ("sqrt(2)", "1.4142135623731"),
    ("abs(-3.5)", "3.5"),
    ("round(2.567, 2)", "2.57"),
    ("round(2.5)", "2"),
    ("round(1234, -2)", "1200"),
    ("min(3, 1, 2)", "1"),
    ("max(1, 2.5, -4)", "2.5"),
    ("log(1000)", "3"),
    ("log(8, 2)", "3"),
    ("ln(e)", "1"),
    ("exp(0)", "1"),
    ("sin(pi / 2)", "1"),
    ("cos(0)", "1"),
    ("tan(0)", "0"),
    ("floor(-2.5)", "-3"),
    ("ceil(2.1)", "3"),
    ("floor(7)", "7"),
    ("2 * pi", "6.28318530717959"),
    ("SQRT(9) + PI - pi", "3"),
    ("  (( 1 ))\n+\t2  ", "3"),
    ("sqrt(3 ** 2 + 4 ** 2)", "5"),
    ("max(min(5, 9), sqrt(36)) * 2", "12"),
]


@pytest.mark.parametrize(("expression", "expected"), CORRECT)
def test_evaluates(expression: str, expected: str) -> None:
    assert format_number(evaluate(expression)) == expected


ABUSE = [
    ("1 / 0", "Division by zero"),
    ("1 // 0", "Division by zero"),
    ("1 % 0", "Division by zero"),
    ("1.5 / 0.0", "Division by zero"),
    ("0 ** -1", "Division by zero"),
    ("10 ** 10 ** 10", "more than 10,000 digits"),
    ("9 ** 9 ** 9", "more than 10,000 digits"),
    ("2 ** 33219", "more than 10,000 digits"),
    ("10 ** 10000", "more than 10,000 digits"),
    ("(10 ** 6000) * (10 ** 6000)", "more than 10,000 digits"),
    ("2 ** (10 ** 5000)", "more than 10,000 digits"),
    ("10.0 ** 400", "too large"),
    ("1e400", "too large"),
    ("exp(1000)", "too large"),
    ("(10 ** 400) / 1.5", "too large"),
    ("(-8) ** (1 / 3)", "not a real number"),
    ("sqrt(-1)", "sqrt() cannot be applied"),
    ("log(0)", "log() cannot be applied"),
    ("log(10, 1)", "log() cannot be applied"),
    ("round(1.5, 1000)", "between -100 and 100"),
    ("round(1.5, 0.5)", "between -100 and 100"),
    ("sqrt(1, 2)", "does not take 2 argument(s)"),
    ("min()", "Expected a number"),
    ("-" * 60 + "1", "nested more than 50 deep"),
    ("(" * 60 + "1" + ")" * 60, "nested more than 50 deep"),
    ("2 **" * 60 + "1", "nested more than 50 deep"),
    ("1" * (MAX_EXPRESSION_CHARS + 1), "longer than 500 characters"),
    ("", "empty"),
    ("   ", "empty"),
    ("2 +", "Expected a number"),
    ("(1 + 2", "Expected ')'"),
    ("1 + 2)", "Unexpected ')'"),
    ("1 2", "Unexpected '2'"),
    ("2pi", "Unexpected 'pi'"),
    ("x + 1", "Unknown name 'x'"),
    ("__import__('os').system('true')", "Unexpected character"),
    ("__import__", "Unknown name '__import__'"),
    ("().__class__", "Unexpected character '.'"),
    ("pi.real", "Unexpected character '.'"),
    ("1 + '2'", "Unexpected character"),
    ("[1, 2]", "Unexpected character '['"),
    ("lambda: 1", "Unexpected character ':'"),
    ("eval(1)", "Unknown name 'eval'"),
    ("1 if 1 else 2", "Unexpected 'if'"),
    ("1 < 2", "Unexpected character '<'"),
    ("٣ + 1", "Unexpected character '٣'"),  # non-ASCII digits are not numbers
    ("pi()", "Unexpected '('"),
    ("sqrt 4", "Expected '('"),
]


@pytest.mark.parametrize(("expression", "reason"), ABUSE)
def test_refuses(expression: str, reason: str) -> None:
    with pytest.raises(CalculationError) as caught:
        evaluate(expression)
    assert reason in str(caught.value)


def test_the_largest_allowed_results_stay_fast() -> None:
    started = time.perf_counter()
    for expression in ("9 ** 10479", "2 ** 33218 - 1", "(10 ** 9999) // 7 ** 5000"):
        evaluate(expression)
    assert time.perf_counter() - started < 0.5


def test_large_integers_are_shown_approximately_beyond_4000_digits() -> None:
    assert format_number(10**3999) == "1" + "0" * 3999
    shown = format_number(-(2**20000))
    assert shown.startswith("≈ -3.98") and "6,021 digits" in shown


async def test_through_the_registry() -> None:
    registry = ToolRegistry([CalculatorTool()])
    result = await registry.call("calculator", {"expression": "(2 + 3) * 4"}, CONTEXT)
    assert (result.content, result.is_error) == ("20", False)

    error = await registry.call("calculator", {"expression": "1 / 0"}, CONTEXT)
    assert error.is_error and "Division by zero" in error.content

    too_long = await registry.call("calculator", {"expression": "1+" * 300 + "1"}, CONTEXT)
    assert too_long.is_error and "Invalid arguments" in too_long.content


def test_describes_itself() -> None:
    tool = CalculatorTool(timeout=2)
    assert tool.name == "calculator"
    assert tool.parameters["required"] == ["expression"]
    assert tool.timeout == 2 and tool.unavailable_reason() is None

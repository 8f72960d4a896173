"""The ``calculator`` tool: arithmetic evaluated by a small parser, never by ``eval``.

The expression is tokenized and evaluated by a recursive-descent parser over this grammar::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/" | "//" | "%") unary)*
    unary  := ("+" | "-") unary | power
    power  := atom (("**" | "^") unary)?          # right-associative, -2**2 == -4
    atom   := NUMBER | CONSTANT | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Integers stay exact; anything with a decimal point, a float function or ``/`` is a float.
The evaluation runs on the event loop, so every costly step is refused before it runs:
expressions over 500 characters, nesting deeper than 50, integers over 10,000 digits (a
million-digit multiplication takes about half a second, measured), and float overflow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentplatform.tools.base import ToolContext, ToolError, ToolResult

Number = int | float

MAX_EXPRESSION_CHARS = 500
MAX_DEPTH = 50
MAX_INT_DIGITS = 10_000
EXACT_DIGITS = 4_000  # below CPython's int-to-str limit (4,300 digits)
_MAX_INT_BITS = math.floor(MAX_INT_DIGITS * math.log2(10))  # so every int has ≤ 10,000 digits
_EXACT_BITS = math.floor(EXACT_DIGITS * math.log2(10))

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<op>\*\*|//|[-+*/%^(),])
    )""",
    re.VERBOSE | re.ASCII,
)

CONSTANTS: Mapping[str, float] = {"pi": math.pi, "e": math.e}


class CalculationError(ToolError):
    """The expression cannot be evaluated; the message says why."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    pos: int


@dataclass(frozen=True, slots=True)
class _Function:
    min_args: int
    max_args: int | None
    apply: Callable[..., Number]


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    end = len(expression.rstrip())
    pos = 0
    while pos < end:
        match = _TOKEN.match(expression, pos)
        if match is None or match.lastgroup is None:
            where = end - len(expression[pos:end].lstrip())
            raise CalculationError(
                f"Unexpected character {expression[where]!r} at position {where}."
            )
        tokens.append(
            _Token(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup))
        )
        pos = match.end()
    tokens.append(_Token("end", "", len(expression)))
    return tokens


def _check_int(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        raise CalculationError(f"The result has more than {MAX_INT_DIGITS:,} digits.")
    return value


def _check_float(value: float) -> float:
    if math.isinf(value) or math.isnan(value):
        raise CalculationError("The result is too large (or not a number).")
    return value


def _as_float(value: Number) -> float:
    try:
        return float(value)
    except OverflowError:
        raise CalculationError("A number is too large to use as a decimal.") from None


def _power(base: Number, exponent: Number) -> Number:
    if base == 0 and exponent < 0:
        raise CalculationError("Division by zero (zero to a negative power).")
    if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
        if abs(base) > 1 and (
            exponent > _MAX_INT_BITS or exponent * math.log2(abs(base)) > _MAX_INT_BITS
        ):
            raise CalculationError(f"The result has more than {MAX_INT_DIGITS:,} digits.")
        result: int = base**exponent
        return _check_int(result)
    try:
        return _check_float(math.pow(_as_float(base), _as_float(exponent)))
    except OverflowError:
        raise CalculationError("The result is too large.") from None
    except ValueError:
        raise CalculationError("The result is not a real number.") from None


def _multiply(left: Number, right: Number) -> Number:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > _MAX_INT_BITS + 1:
            raise CalculationError(f"The result has more than {MAX_INT_DIGITS:,} digits.")
        return _check_int(left * right)
    return _check_float(_as_float(left) * _as_float(right))


def _divide(op: str, left: Number, right: Number) -> Number:
    if right == 0:
        raise CalculationError("Division by zero.")
    try:
        if op == "/":
            return _check_float(left / right)
        if op == "//":
            return left // right
        return left % right
    except OverflowError:
        raise CalculationError("The result is too large.") from None


def _binary(op: str, left: Number, right: Number) -> Number:
    if op == "*":
        return _multiply(left, right)
    if op in ("/", "//", "%"):
        return _divide(op, left, right)
    if isinstance(left, float) or isinstance(right, float):
        return _check_float(
            _as_float(left) + (_as_float(right) if op == "+" else -_as_float(right))
        )
    return _check_int(left + right if op == "+" else left - right)


def _unary_float(fn: Callable[[float], float]) -> Callable[[Number], Number]:
    def apply(x: Number) -> Number:
        return _check_float(fn(_as_float(x)))

    return apply


def _sqrt(x: Number) -> Number:
    if isinstance(x, int) and x >= 0 and math.isqrt(x) ** 2 == x:
        return math.isqrt(x)
    return _check_float(math.sqrt(_as_float(x)))


def _log(x: Number, base: Number = 10) -> Number:
    return _check_float(math.log(x, base))


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x) if isinstance(x, int) else round(_check_float(x))
    if not isinstance(ndigits, int) or not -100 <= ndigits <= 100:
        raise CalculationError("round() takes a whole number of digits between -100 and 100.")
    return round(x, ndigits)


def _integer(fn: Callable[[float], int]) -> Callable[[Number], Number]:
    def apply(x: Number) -> Number:
        return x if isinstance(x, int) else fn(_check_float(x))

    return apply


FUNCTIONS: Mapping[str, _Function] = {
    "sqrt": _Function(1, 1, _sqrt),
    "abs": _Function(1, 1, abs),
    "round": _Function(1, 2, _round),
    "min": _Function(1, None, min),
    "max": _Function(1, None, max),
    "log": _Function(1, 2, _log),
    "ln": _Function(1, 1, lambda x: _check_float(math.log(x))),
    "exp": _Function(1, 1, _unary_float(math.exp)),
    "sin": _Function(1, 1, _unary_float(math.sin)),
    "cos": _Function(1, 1, _unary_float(math.cos)),
    "tan": _Function(1, 1, _unary_float(math.tan)),
    "floor": _Function(1, 1, _integer(math.floor)),
    "ceil": _Function(1, 1, _integer(math.ceil)),
}


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    def parse(self) -> Number:
        if self._peek().kind == "end":
            raise CalculationError("The expression is empty.")
        value = self._expr()
        token = self._peek()
        if token.kind != "end":
            raise CalculationError(f"Unexpected {token.text!r} at position {token.pos}.")
        return value

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _take(self) -> _Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _at_op(self, *ops: str) -> bool:
        token = self._peek()
        return token.kind == "op" and token.text in ops

    def _expect(self, op: str) -> None:
        token = self._take()
        if token.kind != "op" or token.text != op:
            found = "the end" if token.kind == "end" else repr(token.text)
            raise CalculationError(f"Expected {op!r} at position {token.pos}, found {found}.")

    def _expr(self) -> Number:
        value = self._term()
        while self._at_op("+", "-"):
            op = self._take().text
            value = _binary(op, value, self._term())
        return value

    def _term(self) -> Number:
        value = self._unary()
        while self._at_op("*", "/", "//", "%"):
            op = self._take().text
            value = _binary(op, value, self._unary())
        return value

    def _unary(self) -> Number:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise CalculationError(f"The expression is nested more than {MAX_DEPTH} deep.")
            if self._at_op("+", "-"):
                sign = self._take().text
                value = self._unary()
                return -value if sign == "-" else value
            return self._power()
        finally:
            self._depth -= 1

    def _power(self) -> Number:
        base = self._atom()
        if self._at_op("**", "^"):
            self._take()
            return _power(base, self._unary())
        return base

    def _atom(self) -> Number:
        token = self._take()
        if token.kind == "number":
            return _number(token.text)
        if token.kind == "name":
            return self._name(token)
        if token.kind == "op" and token.text == "(":
            value = self._expr()
            self._expect(")")
            return value
        found = "the end of the expression" if token.kind == "end" else repr(token.text)
        raise CalculationError(f"Expected a number at position {token.pos}, found {found}.")

    def _name(self, token: _Token) -> Number:
        name = token.text.lower()
        if name in CONSTANTS:
            return CONSTANTS[name]
        function = FUNCTIONS.get(name)
        if function is None:
            known = ", ".join([*CONSTANTS, *FUNCTIONS])
            raise CalculationError(f"Unknown name {token.text!r}; known names: {known}.")
        self._expect("(")
        args = [self._expr()]
        while self._at_op(","):
            self._take()
            args.append(self._expr())
        self._expect(")")
        if len(args) < function.min_args or (
            function.max_args is not None and len(args) > function.max_args
        ):
            raise CalculationError(f"{name}() does not take {len(args)} argument(s).")
        try:
            return _check_int(function.apply(*args))
        except OverflowError:
            raise CalculationError(f"The result of {name}() is too large.") from None
        except (ValueError, ZeroDivisionError) as exc:
            raise CalculationError(f"{name}() cannot be applied here: {exc}.") from None


def _number(text: str) -> Number:
    if any(c in text for c in ".eE"):
        return _check_float(float(text))
    return int(text)


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression, raising ``CalculationError`` with a clear reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"The expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    return _Parser(_tokenize(expression)).parse()


def format_number(value: Number) -> str:
    """Exact for integers up to 4,000 digits, scientific beyond; floats to 15 digits."""
    if isinstance(value, int):
        if value.bit_length() <= _EXACT_BITS:
            return str(value)
        exponent = math.log10(abs(value))
        mantissa = 10 ** (exponent - math.floor(exponent))
        sign = "-" if value < 0 else ""
        digits = math.floor(exponent) + 1
        return f"≈ {sign}{mantissa:.6f}e+{math.floor(exponent)} (an integer of {digits:,} digits)"
    return f"{value:.15g}"


class CalculatorTool:
    """Evaluates arithmetic expressions for the model."""

    name = "calculator"
    description = (
        "Evaluate an arithmetic expression exactly. Supports + - * / // % ** (or ^), "
        "parentheses, decimals and scientific notation (1.5e3), the constants pi and e, and "
        "the functions sqrt, abs, round(x[, digits]), min, max, log(x[, base]) (base 10 by "
        "default), ln, exp, sin, cos, tan (radians), floor and ceil."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "The expression, e.g. '(2 + 3) * sqrt(16) / 7'.",
                "maxLength": MAX_EXPRESSION_CHARS,
            }
        },
        "required": ["expression"],
        "additionalProperties": False,
    }

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def unavailable_reason(self) -> str | None:
        return None

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise ToolError("The argument 'expression' must be a string.")
        return ToolResult(format_number(evaluate(expression)))

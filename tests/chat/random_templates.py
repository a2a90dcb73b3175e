"""A seeded generator of random Jinja templates covering the language (expressions, filters, tests, methods,
loops, macros, blocks, whitespace control) for differential tests against jinja2."""
import random

STRINGS = ["''", "'a'", "'Hello World'", "' padded '", "'x,y,,z'", "'<b>&\"'", "'é中👍'", "'line1\\nline2'",
           "\"it's\"", "'{{ raw }}'", "'ABC def'", "'  '", "'3'", "'4.5'", "'-7'"]
NUMBERS = ["0", "1", "2", "3", "-1", "7", "10", "2.5", "0.1", "1e3", "1.0", "-0.5"]
NAMES = ["x", "y", "s", "n", "f", "items", "d", "messages", "tools", "none_var", "undefined_var", "flag"]
FILTERS0 = ["trim", "upper", "lower", "title", "capitalize", "length", "first", "last", "list", "string", "int",
            "float", "abs", "tojson", "unique|list", "sort", "reverse|list", "items|list", "dictsort", "sum", "max",
            "min", "wordcount", "safe", "escape", "count", "join"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable",
         "sequence", "boolean", "true", "false", "odd", "even", "lower", "upper", "callable"]
METHODS = ["upper()", "lower()", "strip()", "split(',')", "split()", "startswith('a')", "endswith('z')",
           "replace('a', 'b')", "title()", "find('l')", "lstrip()", "rstrip('x')", "keys()|list", "values()|list",
           "items()|list", "get('a')", "get('q', 5)", "count('a')", "splitlines()", "capitalize()"]


class Generator:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.loop_vars = []
        self.depth = 0

    def pick(self, seq):
        return self.r.choice(seq)

    def atom(self):
        k = self.r.random()
        if k < 0.25:
            return self.pick(STRINGS)
        if k < 0.4:
            return self.pick(NUMBERS)
        if k < 0.75:
            return self.pick(NAMES + self.loop_vars + ["ns.a", "ns.b"])
        if k < 0.8:
            return self.pick(["true", "false", "none", "True", "None"])
        if k < 0.88 and self.depth < 3:
            return "[" + ", ".join(self.expr() for _ in range(self.r.randint(0, 3))) + "]"
        if k < 0.94 and self.depth < 3:
            return "{" + ", ".join(f"{self.pick(STRINGS)}: {self.expr()}" for _ in range(self.r.randint(0, 3))) + "}"
        if self.loop_vars:
            return "loop." + self.pick(["index", "index0", "first", "last", "length", "revindex", "revindex0",
                                        "previtem", "nextitem"])
        return self.pick(NAMES)

    def postfix(self, e):
        k = self.r.random()
        if k < 0.1:
            return f"{e}.{self.pick(['a', 'b', 'role', 'content', 'name', 'items', 'get', '0'])}"
        if k < 0.3:
            return f"{e}[{self.pick(['0', '-1', '1', repr('a'), repr('role'), 'x', '5'])}]"
        if k < 0.4:
            return f"{e}[{self.pick(['', '1', '-2'])}:{self.pick(['', '2', '-1'])}{self.pick(['', ':-1', ':2'])}]"
        if k < 0.55:
            return f"{e}.{self.pick(METHODS)}"
        return e

    def expr(self):
        self.depth += 1
        try:
            k = self.r.random()
            if self.depth > 2 or k < 0.35:
                e = self.postfix(self.atom()) if self.r.random() < 0.5 else self.atom()
            elif k < 0.45:
                e = f"{self.expr()} {self.pick(['+', '-', '*', '~', '~', '//', '%', '/', '**'])} {self.expr()}"
            elif k < 0.6:
                e = f"{self.expr()} {self.pick(['==', '!=', '<', '>=', 'in', 'not in', 'and', 'or'])} {self.expr()}"
            elif k < 0.75:
                e = f"{self.postfix(self.atom())}|{self.filter()}"
            elif k < 0.85:
                e = f"{self.postfix(self.atom())} is {self.pick(['', 'not '])}{self.pick(TESTS)}"
            elif k < 0.9:
                e = f"({self.expr()} if {self.expr()} else {self.expr()})"
            elif k < 0.95:
                e = f"not {self.expr()}"
            else:
                e = f"({self.expr()})"
            return e
        finally:
            self.depth -= 1

    def filter(self):
        k = self.r.random()
        if k < 0.55:
            return self.pick(FILTERS0)
        return self.pick([
            f"default({self.atom()})", f"default({self.atom()}, true)", f"join({self.pick(STRINGS)})",
            f"replace({self.pick(STRINGS)}, {self.pick(STRINGS)})", f"indent({self.pick(['2', '4', 'true', 'first=true'])})",
            "tojson(indent=2)", "map('string')|list", "map(attribute='role')|list", "select('odd')|list",
            "reject('none')|list", "selectattr('role', 'equalto', 'user')|list", "rejectattr('a')|list",
            f"round({self.pick(['', '1', '2'])})", "batch(2)|list", "slice(2)|list", f"trim({self.pick(STRINGS)})",
            "sort(reverse=true)", "unique(attribute='role')|list", "truncate(8, leeway=0)", "center(9)",
            "int(base=16)", "float(default=1.5)", "attr('upper')", "format(1, 2)", "dictsort(by='value')"])

    def ws(self):
        return self.pick(["", "", "", "-", "+"]) if self.r.random() < 0.5 else ""

    def text(self):
        return self.pick(["", "x", " ", "\n", "  \n", "text ", "\n  ", "\t", "a\n\n", " | "])

    def tag(self, body):
        return "{%" + self.ws() + " " + body + " " + self.pick(["", "", "-"]) + "%}"

    def statements(self, n, depth=0):
        out = []
        for _ in range(n):
            k = self.r.random()
            out.append(self.text())
            if k < 0.35 or depth > 2:
                out.append("{{" + self.ws() + " " + self.expr() + " " + self.pick(["", "-"]) + "}}")
            elif k < 0.5:
                out.append(self.tag(f"if {self.expr()}") + self.statements(2, depth + 1) +
                           (self.tag(f"elif {self.expr()}") + self.statements(1, depth + 1) if self.r.random() < 0.3 else "") +
                           (self.tag("else") + self.statements(1, depth + 1) if self.r.random() < 0.5 else "") +
                           self.tag("endif"))
            elif k < 0.65:
                var = self.pick(["i", "m", "c"])
                it = self.pick(["range(3)", "messages", "items", "s", "d", "'ab'", "d.items()", "tools", "[]",
                                "n", "none_var", self.expr()])
                target = "k, v" if it == "d.items()" else var
                cond = f" if {self.expr()}" if self.r.random() < 0.2 else ""
                self.loop_vars.append(var)
                body = self.statements(2, depth + 1)
                if self.r.random() < 0.2:
                    body += self.tag(f"if {self.expr()}") + self.tag(self.pick(["break", "continue"])) + self.tag("endif")
                self.loop_vars.pop()
                els = self.tag("else") + self.statements(1, depth + 1) if self.r.random() < 0.3 else ""
                out.append(self.tag(f"for {target} in {it}{cond}") + body + els + self.tag("endfor"))
            elif k < 0.75:
                out.append(self.tag(f"set {self.pick(['x', 'y', 'z', 'ns.a', 'ns.b', 'a, b'])} = {self.expr()}"))
            elif k < 0.8:
                out.append(self.tag(f"set z {self.pick(['', '| upper', '| trim'])}") + self.statements(1, depth + 1) +
                           self.tag("endset") + "{{ z }}")
            elif k < 0.87:
                out.append(self.tag("macro mac(p, q=" + self.atom() + ")") + self.text() + "{{ p }}{{ q }}" +
                           self.statements(1, depth + 1) + self.tag("endmacro") +
                           "{{ mac(" + self.expr() + ") }}{{ mac(" + self.expr() + ", q=" + self.expr() + ") }}")
            elif k < 0.92:
                out.append(self.tag(f"filter {self.pick(['upper', 'trim', 'title', 'indent(2)', 'lower|trim'])}") +
                           self.statements(1, depth + 1) + self.tag("endfilter"))
            elif k < 0.96:
                out.append(self.tag("call(v) cm(" + self.expr() + ")") + "{{ v }}" + self.text() + self.tag("endcall"))
            else:
                out.append("{#" + self.ws() + " comment " + self.pick(["", "-"]) + "#}")
        return "".join(out)

    def template(self):
        prelude = ("{% set ns = namespace(a=1, b='q') %}"
                   "{% macro cm(w) %}[{{ caller(w) }}]{% endmacro %}" if self.r.random() < 0.9 else "")
        return prelude + self.statements(self.r.randint(1, 3))


VARIABLES = {
    "x": "Hello, World", "y": 3, "s": "a,b,c", "n": 2.5, "f": -4, "flag": True, "none_var": None,
    "items": [3, 1, 2, 1], "d": {"b": 1, "a": 2, "role": "user"},
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi <b> & é"},
                 {"role": "assistant", "content": " Hello! "}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "x": [1.5, None]}}}],
}

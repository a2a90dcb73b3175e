"""A deterministic test corpus for the tokenizers: many scripts, emoji sequences, combining marks, code,
numbers, whitespace runs, contractions, special-token text inside prose and unusual Unicode.

`corpus()` returns the same list of strings on every run (a fixed seed, no external data). Lone surrogates
cannot be passed through UTF-8 (nor to HF tokenizers), so invalid text is tested on the C++ side instead.
Random code points are drawn only from characters assigned in Unicode 14 (Python's tables), so that the
comparison does not depend on which Unicode version each implementation's tables follow.
Run as a script to print the corpus size and a few samples.
"""
import random
import unicodedata

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! How are you doing today?",
    "In 1492, Columbus sailed the ocean blue.",
    "She said: \"It's not what you think.\"",
    "e-mail me at someone@example.com, or visit https://example.org/path?q=1&x=2#frag",
    "UPPER CASE and lower case and MiXeD CaSe",
    "Rock 'n' roll isn't dead; it's resting.",
    "naïve café résumé coöperate façade jalapeño",
    "Ünïcödé wörds: Straße, Größe, Æsir, Øresund, Åland",
]
SCRIPTS = [
    "你好，世界！今天天气怎么样？",
    "我爱自然语言处理和大型语言模型。",
    "日本語のテキストです。カタカナとひらがなと漢字。",
    "한국어 텍스트입니다. 안녕하세요!",
    "مرحبا بالعالم! كيف حالك اليوم؟",
    "السلام عليكم ورحمة الله وبركاته",
    "नमस्ते दुनिया! आप कैसे हैं?",
    "हिन्दी में लिखा गया एक वाक्य।",
    "Привет, мир! Как дела?",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "สวัสดีชาวโลก วันนี้อากาศดีมาก",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Γειά σου Κόσμε! Ελληνικά γράμματα.",
    "שלום עולם! מה שלומך?",
    "Xin chào thế giới! Tiếng Việt có dấu.",
    "ሰላም ለዓለም",
    "ᓀᐦᐃᔭᐍᐏᐣ",
    "Բարեւ աշխարհ",
    "გამარჯობა მსოფლიო",
    "வணக்கம் உலகம்",
    "ಕನ್ನಡ ಅಕ್ಷರಗಳು",
    "བོད་ཡིག",
]
EMOJI = [
    "👍", "👍🏽", "👍🏿", "👨‍👩‍👧‍👦", "👩🏿‍💻", "🧑🏻‍🤝‍🧑🏾", "🏳️‍🌈", "🏴‍☠️", "🇯🇵", "🇺🇸🇬🇧", "❤️", "❤️‍🔥",
    "😀😃😄😁", "🤖", "🙏🏼", "👁️‍🗨️", "🫠", "🦀🐍", "✈️", "©️®️™️", "1️⃣2️⃣#️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
]
COMBINING = [
    "e\u0301", "a\u0308\u0323", "A\u030A", "Å", "n\u0303", "Z\u0351\u0364\u0306\u0350a\u0358\u0322lgo",
    "\u1100\u1161\u11a8", "각", "ﬁ ﬂ ﬃ", "①②③", "Ⅻ", "ｆｕｌｌｗｉｄｔｈ", "x\u0338", "o\u0302\u0301",
    "क्षत्रिय", "\u0915\u094d\u200d\u0937",
]
CODE = [
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}",
    "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v.size(); }",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(1, 2)}`);",
    "fn main() {\n    let x: Vec<u8> = vec![0xFF; 16];\n    println!(\"{:?}\", x);\n}",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}",
    "<div class=\"main\"><p>Hello &amp; welcome</p></div>",
    "if x != None and y == 'it\\'s':\n\tpass",
    "$ echo $HOME && ls -la | grep '^d' > /dev/null 2>&1",
    "    indented    code\twith\ttabs\n\n\n    and blank lines",
    "a=b+c*d/e-f%g^h&i|j~k!l?m:n;o,p.q",
]
NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "-273.15", "1,000,000", "1e-9", "0x1F",
    "2024-01-15", "12:34:56", "$9.99", "100%", "٣٤٥", "१२३", "５６７", "³⁴", "½", "Ⅳ",
]
WHITESPACE = [
    " ", "  ", "   ", "    ", "        ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", " \n ", "\n \n",
    " \t \n", "\u00a0", "\u3000", "\u2009", "\u2003\u2003", "\u200b", "\u2028", "\u0085", "\x0b", "\x0c",
]
CONTRACTIONS = [
    "I'm", "you're", "he's", "she'll", "we've", "they'd", "don't", "can't", "won't", "it's", "I'M", "YOU'RE",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "rock'n'roll", "o'clock", "y'all'd've",
]
SPECIAL_TEXT = [
    "<|endoftext|>", "<s>", "</s>", "<unk>", "[INST]", "[/INST]", "<|im_start|>", "<|im_end|>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_5|>", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "<think>", "</think>",
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|vision_pad|>", "<|im_", "|>", "<|", "<s", "[INST",
    "<<SYS>>", "<|python_tag|>",
]
UNUSUAL = [
    "\ufffd", "\ufeff", "\u200b\u200c\u200d", "\u200e\u200f", "\u202e reversed", "\ue000\uf8ff", "\uffff",
    "\U0010ffff", "\U0001d518\U0001d52b\U0001d526", "\x00", "\x01\x02\x03", "\x1b[31mred\x1b[0m", "\x7f",
    "\u00ad", "\u2060", "\ufe0f", "\U000e0041", "\U0001f3fb", "\u0600\u0601", "\u061c", "\ud7ff", "\ue0001",
]
POOLS = [PROSE, SCRIPTS, EMOJI, COMBINING, CODE, NUMBERS, WHITESPACE, CONTRACTIONS, SPECIAL_TEXT, UNUSUAL]
RANDOM_RANGES = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0xDFF), (0xE00, 0xE7F),
                 (0x1100, 0x11FF), (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
                 (0xF900, 0xFFFD), (0x10000, 0x1FAFF), (0x20000, 0x2A6DF), (0xE0000, 0xE007F)]


def random_text(rng: random.Random) -> str:
    chars = []
    for _ in range(rng.randint(1, 24)):
        lo, hi = rng.choice(RANDOM_RANGES)
        cp = rng.randint(lo, hi)
        # Only code points assigned in Python's Unicode tables (14.0): radixlm's ICU and HF's Rust crates
        # are on different Unicode versions, and characters assigned since then change class between them.
        if 0xD800 <= cp <= 0xDFFF or unicodedata.category(chr(cp)) == "Cn":
            continue
        chars.append(chr(cp))
    return "".join(chars)


def corpus(size: int = 6000, seed: int = 20261122) -> list:
    rng = random.Random(seed)
    texts = [""]
    for pool in POOLS:
        texts.extend(pool)  # every fragment on its own
    separators = ["", " ", "  ", "\n", "\t", ", ", " \n", "\n\n"]
    while len(texts) < size - 20:
        kind = rng.random()
        if kind < 0.1:
            texts.append(random_text(rng))
            continue
        parts = []
        for _ in range(rng.randint(1, 7)):
            pool = rng.choice(POOLS)
            piece = rng.choice(pool)
            if pool is NUMBERS and rng.random() < 0.3:
                piece = str(rng.randint(0, 10 ** rng.randint(1, 15)))
            if pool is WHITESPACE and rng.random() < 0.3:
                piece = piece * rng.randint(2, 9)
            parts.append(piece)
            parts.append(rng.choice(separators))
        text = "".join(parts)
        if rng.random() < 0.1:
            text = text.upper() if rng.random() < 0.5 else text.lower()
        texts.append(text)
    # A few long texts: whole paragraphs, long runs without spaces, long whitespace runs.
    for i in range(20):
        block = "".join(rng.choice(rng.choice(POOLS)) + rng.choice(separators) for _ in range(200))
        texts.append(block)
    texts[-1] = "你" * 3000 + " " * 2000 + "a" * 3000
    texts[-2] = "\n" * 500 + "\t " * 500 + "x"
    return texts


if __name__ == "__main__":
    texts = corpus()
    print(len(texts), sum(len(t.encode()) for t in texts), "bytes")
    for t in texts[200:205]:
        print(repr(t))

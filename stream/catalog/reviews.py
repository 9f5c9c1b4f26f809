"""Reviews for the sample catalog: mostly generic praise and complaints, rarely naming the product (pure)."""

import random

from stream.catalog.product import Product

SPECIFIC_SHARE = 0.12  # reviews that may name the kind or brand; the rest could be about any toy
Phrases = tuple[tuple[str, ...], tuple[str, ...]]  # (happy, unhappy)

_TOPICS_EN: tuple[Phrases, ...] = (
    (  # delivery
        (
            "Arrived two days early.",
            "Delivered on time and well protected.",
            "Fast shipping.",
            "Got here the next day.",
        ),
        ("Shipping took almost three weeks.", "It came a week late.", "The courier left it out in the rain."),
    ),
    (  # quality
        (
            "Feels solid and well made.",
            "Good quality for the price.",
            "Nothing has broken so far.",
            "Survived a lot of rough play already.",
        ),
        ("Feels cheap and flimsy.", "It broke within a week.", "There were rough edges we had to sand down."),
    ),
    (  # the child's reaction
        ("{who} loves it.", "{who} plays with it every day.", "{who} was thrilled to open it."),
        ("{who} lost interest after a day.", "{who} got bored of it quickly.", "{who} cried when it broke."),
    ),
    (  # price
        ("Great value.", "Worth every penny.", "Cheaper than in the shops.", "Bought it on sale, a bargain."),
        ("Overpriced for what you get.", "Not worth the money.", "Way too expensive."),
    ),
    (  # packaging
        ("Nicely packaged, ready to give as a present.", "The box is sturdy and looks nice."),
        ("The box was crushed.", "Far too much plastic packaging.", "The packaging was torn open."),
    ),
)
_TOPICS_ZH: tuple[Phrases, ...] = (
    (("物流很快，第二天就到了。", "快递很给力。"), ("快递太慢了，等了两个星期。", "物流很慢。")),
    (("质量不错，做工很好。", "用料扎实。"), ("质量一般，有点粗糙。", "玩了一周就坏了。")),
    (("孩子很喜欢，天天玩。", "小朋友爱不释手。"), ("孩子玩了一会儿就不玩了。", "孩子不太感兴趣。")),
    (("性价比很高。", "价格实惠。"), ("有点贵。", "不值这个价。")),
    (("包装很好，送人很合适。", "包装完好无损。"), ("包装破损了。", "外包装太简陋。")),
)
_WHO = ("My daughter", "My son", "My nephew", "My granddaughter", "My grandson", "Our little one")
_OPENERS = (
    "Bought this for a birthday.",
    "We ordered it as a Christmas present.",
    "I bought it after reading the reviews here.",
    "Second one we have bought.",
)
_SHORT_EN = {
    5: ("Love it!", "Five stars."),
    4: ("Good.", "Nice."),
    3: ("ok", "Meh."),
    2: ("Meh.",),
    1: ("Returned it.",),
}
_SHORT_ZH = {
    5: ("好评！", "非常满意。"),
    4: ("不错。",),
    3: ("一般般。", "还行"),
    2: ("不太满意。",),
    1: ("差评。",),
}
_CLOSERS = {True: ("Would buy again.", "Recommended."), False: ("Would not recommend.", "Sending it back.")}
_TITLES_EN = {
    5: "Perfect gift",
    4: "Great value",
    3: "Mixed feelings",
    2: "Not as expected",
    1: "Poor quality",
}
_TITLES_ZH = {5: "五星好评", 4: "值得购买", 3: "还可以", 2: "不太满意", 1: "不推荐"}


def rating(product: Product, rng: random.Random) -> int:
    """A star rating scattered around the product's quality."""
    return min(5, max(1, round(rng.gauss(product.quality, 0.9))))


def _moods(stars: int, count: int, rng: random.Random) -> list[bool]:
    """Whether each of ``count`` remarks is happy: all of them at 4-5 stars, none at 1-2, mixed at 3."""
    return [stars >= 4 or (stars == 3 and rng.random() < 0.5) for _ in range(count)]


def _remarks(topics: tuple[Phrases, ...], stars: int, rng: random.Random) -> list[str]:
    """0-5 generic remarks: a third of reviews are one short line, others run to several sentences."""
    count = rng.choice((0, 0, 1, 1, 2, 2, 3, 4, 5))
    chosen = rng.sample(topics, count)
    return [rng.choice(topic[0 if happy else 1]) for topic, happy in zip(chosen, _moods(stars, count, rng))]


def _specific_en(product: Product, stars: int, rng: random.Random) -> str:
    """A remark that names the kind or the brand loosely, or a trait of the kind."""
    p, happy = product, stars >= 3
    trait = rng.choice(p.kind.praise if happy else p.kind.complaints)
    return rng.choice(
        (
            f"{trait[0].upper()}{trait[1:]}.",
            f"As {p.kind.noun[0].lower()}s go, this one is {'great' if happy else 'poor'}.",
            f"{'Another solid buy' if happy else 'Not up to the usual standard'} from {p.brand.lower()}.",
        )
    )


def review_en(product: Product, stars: int, rng: random.Random) -> tuple[str, str]:
    """A (title, text) review in English; most could be about any toy."""
    remarks = _remarks(_TOPICS_EN, stars, rng)
    if rng.random() < SPECIFIC_SHARE:
        remarks.insert(rng.randint(0, len(remarks)), _specific_en(product, stars, rng))
    if not remarks:
        return _TITLES_EN[stars], rng.choice(_SHORT_EN[stars])
    who = rng.choice(_WHO)
    lines = [remark.format(who=who) for remark in remarks]
    if len(lines) >= 3:
        lines = [rng.choice(_OPENERS), *lines, rng.choice(_CLOSERS[stars >= 4])]
    return _TITLES_EN[stars], " ".join(lines)


def review_zh(product: Product, stars: int, rng: random.Random) -> tuple[str, str]:
    """A (title, text) review in Simplified Chinese; most could be about any toy."""
    p = product
    remarks = _remarks(_TOPICS_ZH, stars, rng)
    if rng.random() < SPECIFIC_SHARE:
        trait = rng.choice(p.kind.praise_zh if stars >= 3 else p.kind.complaints_zh)
        remarks.append(rng.choice((f"这个{p.kind.noun[1]}{trait}。", f"{p.brand}的东西，{trait}。")))
    return _TITLES_ZH[stars], "".join(remarks) or rng.choice(_SHORT_ZH[stars])

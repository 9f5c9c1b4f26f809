"""Hand-made English and Simplified Chinese vocabulary of the sample toy catalog."""

from dataclasses import dataclass

Words = tuple[str, str]  # (English, Simplified Chinese)


@dataclass(frozen=True)
class Colour:
    """A product colour with its names and the RGB used to draw it."""

    en: str
    zh: str
    rgb: tuple[int, int, int]
    synonyms: tuple[str, ...]  # other English names sellers use for it
    synonyms_zh: tuple[str, ...]


@dataclass(frozen=True)
class ToyKind:
    """One kind of toy: how sellers name it, what it is made of, and what reviewers say about it."""

    shape: str  # drawing routine in stream/catalog/render.py
    noun: Words
    categories: tuple[str, ...]  # broadest first; the last one is the kind's own category
    category_zh: str
    brands: tuple[str, ...]  # invented brand names
    material: Words
    subjects: tuple[Words, ...]  # what distinguishes products of this kind ("space station")
    pieces: tuple[int, int] | None  # range of piece counts; None when pieces make no sense
    age_min_months: tuple[int, ...]  # typical youngest ages
    price_usd: tuple[int, int]
    batteries: bool
    praise: tuple[str, ...]  # English phrases a happy reviewer writes
    complaints: tuple[str, ...]
    praise_zh: tuple[str, ...]
    complaints_zh: tuple[str, ...]


COLOURS = (
    Colour("red", "红色", (205, 45, 45), ("crimson", "scarlet"), ("大红", "酒红")),
    Colour("blue", "蓝色", (45, 90, 210), ("navy", "royal blue"), ("深蓝", "宝蓝")),
    Colour("green", "绿色", (50, 165, 75), ("lime", "forest green"), ("草绿", "墨绿")),
    Colour("yellow", "黄色", (240, 205, 45), ("lemon", "mustard"), ("明黄", "柠檬黄")),
    Colour("pink", "粉色", (240, 135, 185), ("rose", "blush"), ("粉红", "樱花粉")),
    Colour("purple", "紫色", (135, 65, 185), ("violet", "lilac"), ("紫罗兰", "浅紫")),
    Colour("orange", "橙色", (245, 135, 35), ("tangerine", "amber"), ("橘色", "橘黄")),
    Colour("black", "黑色", (45, 45, 50), ("jet black", "ebony"), ("炫黑", "曜石黑")),
    Colour("white", "白色", (240, 240, 235), ("ivory", "off-white"), ("米白", "象牙白")),
    Colour("brown", "棕色", (135, 85, 45), ("chocolate", "tan"), ("咖啡色", "褐色")),
    Colour("grey", "灰色", (135, 135, 140), ("gray", "charcoal"), ("浅灰", "深灰")),
    Colour("teal", "青色", (35, 155, 155), ("turquoise", "aqua"), ("湖蓝", "蓝绿")),
)

SIZES: tuple[Words, ...] = (("small", "小号"), ("medium", "中号"), ("large", "大号"))

KINDS = (
    ToyKind(
        "blocks",
        ("Building Set", "积木套装"),
        ("Toys & Games", "Building Toys", "Building Sets"),
        "积木",
        ("BrickNest", "Blokko", "StackWorks"),
        ("ABS plastic", "ABS塑料"),
        (
            ("Space Station", "太空站"),
            ("Fire Station", "消防站"),
            ("Pirate Ship", "海盗船"),
            ("Castle", "城堡"),
            ("Farm House", "农场小屋"),
            ("Race Track", "赛道"),
        ),
        (120, 900),
        (48, 60, 72, 96),
        (15, 80),
        False,
        (
            "the bricks click together firmly",
            "the instructions are easy to follow",
            "the pieces come sorted in numbered bags",
        ),
        ("a few pieces were missing", "the bricks are hard for small hands to pull apart"),
        ("积木拼插很紧实", "说明书很清楚"),
        ("少了几块积木", "小孩子很难拆开"),
    ),
    ToyKind(
        "plush",
        ("Plush Toy", "毛绒玩具"),
        ("Toys & Games", "Stuffed Animals", "Plush Toys"),
        "毛绒玩具",
        ("Cuddleworks", "Fluffin", "SnuggleCo"),
        ("polyester plush", "聚酯纤维毛绒"),
        (
            ("Teddy Bear", "泰迪熊"),
            ("Bunny", "兔子"),
            ("Elephant", "大象"),
            ("Dinosaur", "恐龙"),
            ("Unicorn", "独角兽"),
            ("Penguin", "企鹅"),
        ),
        None,
        (0, 12, 36),
        (9, 35),
        False,
        ("the fur is super soft", "the stitching is solid", "it survived the washing machine"),
        ("it sheds a little fluff", "it is smaller than the photos suggest"),
        ("毛很柔软", "做工结实"),
        ("有点掉毛", "比图片小"),
    ),
    ToyKind(
        "rc_car",
        ("Remote Control Car", "遥控车"),
        ("Toys & Games", "Vehicles", "RC Cars"),
        "遥控车",
        ("ZoomRide", "TurboTot", "VoltRacer"),
        ("ABS plastic and rubber", "塑料和橡胶"),
        (
            ("Monster Truck", "大脚怪卡车"),
            ("Rally Car", "拉力赛车"),
            ("Dune Buggy", "沙滩车"),
            ("Police Car", "警车"),
            ("Stunt Car", "特技车"),
        ),
        None,
        (60, 72, 96),
        (25, 90),
        True,
        ("it is fast on carpet and tiles", "the remote has a good range", "the battery is rechargeable"),
        ("the battery only lasts about 15 minutes", "the steering is a bit twitchy"),
        ("速度很快", "遥控距离远"),
        ("电池不耐用", "转向不太灵"),
    ),
    ToyKind(
        "doll",
        ("Doll", "娃娃"),
        ("Toys & Games", "Dolls & Accessories", "Dolls"),
        "娃娃",
        ("PetalPals", "Lulabelle", "Dollhaven"),
        ("vinyl and fabric", "搪胶和布料"),
        (
            ("Ballerina", "芭蕾舞"),
            ("Doctor", "医生"),
            ("Astronaut", "宇航员"),
            ("Princess", "公主"),
            ("Baby", "婴儿"),
        ),
        None,
        (36, 48),
        (12, 45),
        False,
        ("the outfit is well made", "the hair is easy to brush", "the arms and legs move"),
        ("the shoes fall off easily", "the hair tangles quickly"),
        ("衣服做工精致", "头发好梳理"),
        ("鞋子容易掉", "头发容易打结"),
    ),
    ToyKind(
        "puzzle",
        ("Jigsaw Puzzle", "拼图"),
        ("Toys & Games", "Puzzles", "Jigsaw Puzzles"),
        "拼图",
        ("PuzzleCraft", "PieceWise", "Tessly"),
        ("recycled cardboard", "再生纸板"),
        (
            ("World Map", "世界地图"),
            ("Ocean Animals", "海洋动物"),
            ("Dinosaur", "恐龙"),
            ("Solar System", "太阳系"),
            ("Farm", "农场"),
        ),
        (24, 1000),
        (36, 48, 72, 96),
        (8, 25),
        False,
        ("the pieces fit snugly", "the print is bright and colourful", "the pieces are thick and sturdy"),
        ("the box arrived crushed", "one piece was missing"),
        ("拼块很厚实", "印刷色彩鲜艳"),
        ("盒子压坏了", "少了一块"),
    ),
    ToyKind(
        "train",
        ("Wooden Train Set", "木制火车套装"),
        ("Toys & Games", "Vehicles", "Toy Trains"),
        "火车玩具",
        ("TimberTrack", "ChooCo", "OakRail"),
        ("beech wood", "榉木"),
        (
            ("Steam Engine", "蒸汽机车"),
            ("Freight", "货运"),
            ("Circus", "马戏团"),
            ("Passenger", "客运"),
            ("Mountain", "山地"),
        ),
        (15, 80),
        (24, 36),
        (20, 70),
        False,
        (
            "the wood is smooth and solid",
            "the magnets hold the wagons together",
            "it fits other wooden tracks",
        ),
        ("the paint chipped after a week", "the track pieces are a bit loose"),
        ("木头光滑结实", "磁铁连接很牢"),
        ("掉漆了", "轨道有点松"),
    ),
    ToyKind(
        "board_game",
        ("Board Game", "桌游"),
        ("Toys & Games", "Games", "Board Games"),
        "桌游",
        ("MeepleMill", "Rollhouse", "TableTales"),
        ("cardboard", "纸板"),
        (
            ("Strategy", "策略"),
            ("Word", "文字"),
            ("Memory", "记忆"),
            ("Racing", "竞速"),
            ("Treasure Hunt", "寻宝"),
        ),
        (30, 200),
        (60, 72, 96),
        (15, 50),
        False,
        (
            "the rules are quick to learn",
            "a game lasts about 30 minutes",
            "it is great for family game night",
        ),
        ("the cards feel thin", "it gets repetitive after a few rounds"),
        ("规则简单易学", "适合全家一起玩"),
        ("卡片有点薄", "玩几次就腻了"),
    ),
    ToyKind(
        "action_figure",
        ("Action Figure", "可动人偶"),
        ("Toys & Games", "Action Figures", "Figures"),
        "人偶",
        ("HeroForge", "MightyMinis", "TitanToys"),
        ("PVC", "PVC塑料"),
        (
            ("Knight", "骑士"),
            ("Ninja", "忍者"),
            ("Space Ranger", "太空游骑兵"),
            ("Firefighter", "消防员"),
            ("Dinosaur Hunter", "恐龙猎人"),
        ),
        None,
        (48, 60),
        (10, 35),
        False,
        ("it has lots of points of articulation", "the paint job is detailed", "it comes with accessories"),
        ("a joint broke on the first day", "the accessories are tiny and easy to lose"),
        ("关节很灵活", "涂装细致"),
        ("关节容易坏", "配件太小容易丢"),
    ),
    ToyKind(
        "kite",
        ("Kite", "风筝"),
        ("Toys & Games", "Outdoor Play", "Kites"),
        "风筝",
        ("SkyDance", "WindPal", "AeroJoy"),
        ("ripstop nylon", "防撕裂尼龙"),
        (
            ("Diamond", "菱形"),
            ("Butterfly", "蝴蝶"),
            ("Dragon", "龙"),
            ("Eagle", "老鹰"),
            ("Octopus", "章鱼"),
        ),
        None,
        (60, 72),
        (10, 40),
        False,
        ("it flies easily in light wind", "the string is long and sturdy", "it is quick to assemble"),
        ("a rod snapped in strong wind", "the string tangles easily"),
        ("微风就能飞起来", "线很结实"),
        ("骨架容易断", "线容易缠"),
    ),
    ToyKind(
        "science_kit",
        ("Science Kit", "科学实验套装"),
        ("Toys & Games", "Learning & Education", "Science Kits"),
        "科学玩具",
        ("LabSprout", "CurioLab", "Eurekids"),
        ("plastic", "塑料"),
        (
            ("Volcano", "火山"),
            ("Crystal Growing", "水晶生长"),
            ("Slime Lab", "史莱姆"),
            ("Electric Circuit", "电路"),
            ("Microscope", "显微镜"),
        ),
        (10, 60),
        (72, 96),
        (18, 55),
        False,
        (
            "the step-by-step guide is clear",
            "the experiments actually work",
            "it taught my kids real science",
        ),
        ("some chemicals ran out quickly", "it needs a lot of adult help"),
        ("说明步骤清楚", "实验真的能成功"),
        ("材料用得太快", "需要大人帮忙"),
    ),
    ToyKind(
        "play_kitchen",
        ("Play Kitchen", "过家家厨房"),
        ("Toys & Games", "Pretend Play", "Play Kitchens"),
        "过家家玩具",
        ("LittleChef", "CookNook", "HomeyHut"),
        ("MDF wood", "中密度纤维板"),
        (
            ("Retro", "复古"),
            ("Modern", "现代"),
            ("Cottage", "田园"),
            ("Cafe", "咖啡馆"),
            ("Bakery", "烘焙坊"),
        ),
        (5, 40),
        (24, 36),
        (40, 150),
        False,
        ("it is sturdy once assembled", "the knobs click and turn", "there is lots of storage"),
        ("assembly took two hours", "a panel arrived scratched"),
        ("组装后很稳固", "旋钮可以转动"),
        ("组装花了很久", "面板有划痕"),
    ),
    ToyKind(
        "robot",
        ("Robot Toy", "机器人玩具"),
        ("Toys & Games", "Electronic Toys", "Robots"),
        "机器人",
        ("BotBuddy", "CircuitPals", "Robokin"),
        ("ABS plastic", "ABS塑料"),
        (
            ("Dancing", "跳舞"),
            ("Coding", "编程"),
            ("Transforming", "变形"),
            ("Walking", "行走"),
            ("Talking", "会说话的"),
        ),
        None,
        (48, 60, 72),
        (20, 80),
        True,
        ("the lights and sounds are fun", "the coding app is easy to use", "it responds to voice commands"),
        ("it eats batteries", "it is louder than expected"),
        ("灯光和声音很有趣", "编程很简单"),
        ("很费电池", "声音太大"),
    ),
)

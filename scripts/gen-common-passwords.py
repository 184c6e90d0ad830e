#!/usr/bin/env python3
"""Writes data/common-passwords.txt: passwords of 8 or more characters that
people pick most often, built from the shapes they are made of (common
words, names and phrases, in English and in Taiwanese usage and pinyin,
with the usual digit and symbol endings; runs of digits and keyboard
walks). zxcvbn (libzxcvbn) already refuses most of these by its own
estimate; the list adds local words and phrases it does not know and
makes the refusal of the obvious ones independent of its dictionaries.
Run from the repository's top: python3 scripts/gen-common-passwords.py"""

import itertools
import os

WORDS = """
password passw0rd p@ssword p@ssw0rd iloveyou loveyou lovely lover loving
welcome letmein admin administrator master monkey dragon shadow sunshine
princess football baseball basketball soccer superman batman spiderman
michael jordan michelle jennifer jessica charlie andrew daniel thomas robert
joshua matthew william anthony nicole ashley amanda hannah taylor
summer winter autumn spring flower flowers rainbow butterfly angel angels
computer internet secret freedom whatever trustno1 starwars pokemon pikachu
naruto doraemon hellokitty kitty snoopy mickey minnie garfield totoro
chocolate cookie cookies banana orange apple strawberry cherry peach mango
purple yellow silver golden diamond crystal forever together family friends
friend happy smile lucky money qwerty asdfgh zxcvbn qwertyuiop asdfghjkl
zxcvbnm abcdefg abcdefgh abcdef abcde abcd hello hello123 test tester
testing guest user login access default changeme mypassword yourpassword
google facebook youtube instagram twitter line linebot wechat apple samsung
iphone android microsoft windows linux ubuntu oracle mysql database server
taipei taiwan taipei101 formosa kaohsiung taichung tainan hsinchu keelung
taoyuan yilan hualien taitung pingtung chiayi changhua nantou miaoli yunlin
taipeicity newtaipei taiwan101 taiwanno1 iloveTaiwan ilovetaipei taipeipass
woaini woaini1314 woaiwojia woaiwoma woainimen wodemima mima mimamima
zhongguo zhonghua nihao xiexie baobei laopo laogong qinai aini aiai
wangwang xiaoming xiaohua xiaomei xiaolong xiaobao meimei jiejie gege didi
dada mama baba papa mami daddy mommy mother father sister brother
jaychou mayday sodagreen jolin showlo bobby eason wangleehom
chen lin huang zhang wang li liu cai yang wu zheng xu xie hong guo
tiger rabbit monkey horse cat dog puppy kitten panda bear lion eagle
shark dolphin turtle fish bird chicken pig cow sheep mouse snake
ocean river mountain forest island star stars moon sun sky cloud
heaven hell devil god jesus christ church bible amen
killer hunter ranger soldier warrior ninja samurai pirate viking knight
player gamer gaming games minecraft roblox fortnite lol dota steam
music guitar piano drums singer dancer rock metal jazz hiphop
coffee tea beer wine whisky vodka pizza burger sushi ramen
love hate life live dream dreams hope faith peace power
nothing something anything everything someone nobody
""".split()

SUFFIXES = ["", "1", "12", "123", "1234", "12345", "123456", "!", "1!", "123!",
            "01", "007", "88", "99", "520", "1314", "5201314", "666", "888",
            "2024", "2025", "2026", "@123"]
PREFIXES = ["", "i", "my"]

DIGIT_RUNS = ["0123456789", "1234567890", "9876543210", "0987654321",
              "1357924680", "2468013579", "1122334455", "1212121212",
              "1231231231", "1234512345", "5201314520", "1314520520",
              "1472583690", "1593574862", "7894561230", "3692581470"]

KEYBOARD = """
qwertyui qwertyuio qwertyuiop qwerasdf qwerasdfzxcv asdfghjk asdfghjkl
zxcvbnm1 zxcvbnm, 1qaz2wsx 1qaz2wsx3edc 1qaz2wsx3edc4rfv qazwsxedc
qazwsxedcrfv zaq12wsx zaq1xsw2 zaq1zaq1 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y
q1w2e3r4 q1w2e3r4t5 !qaz2wsx !qaz@wsx 1qazxsw2 2wsx3edc 3edc4rfv
qweasdzxc qweasd123 asdqwe123 zxcasdqwe 147258369 159357159 741852963
963852741 123qweasd 123qweasdzxc qwe123456 qwer1234 asdf1234 zxcv1234
1234qwer 1234asdf 1234zxcv abcd1234 1234abcd abc12345 12345abc a1234567
a12345678 a123456789 aa123456 aa12345678 qq123456 123456aa 123456qq
123456abc abc123456 asd123456 zxc123456 qwe12345 asd12345 zxc12345
a1b2c3d4 a1b2c3d4e5 1a2b3c4d abcabcabc abc123abc 123abc123
password! password1! passw0rd! p@ssw0rd! iloveyou! iloveyou1 iloveyou2
""".split()


def add(out, p):
    p = p.lower()
    if 8 <= len(p) <= 128:
        out.add(p)


def main():
    out = set()
    for w in WORDS:
        for pre, suf in itertools.product(PREFIXES, SUFFIXES):
            add(out, pre + w + suf)
        add(out, w + w)
        add(out, w.capitalize() + "1234")
    for k in KEYBOARD:
        add(out, k)
    for run in DIGIT_RUNS:
        for n in range(8, len(run) + 1):
            add(out, run[:n])
    for d in "0123456789":
        for n in range(8, 13):
            add(out, d * n)
    for a, b in itertools.product("0123456789", repeat=2):
        add(out, (a + b) * 4)
        add(out, (a * 4) + (b * 4))
    for ch in "abcdefghijklmnopqrstuvwxyz":
        for n in range(8, 11):
            add(out, ch * n)
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(top, "data", "common-passwords.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Passwords iSSO refuses as too common (compared case-insensitively\n"
                "# after NFKC). Generated by scripts/gen-common-passwords.py; see there.\n"
                "# Operators may point security.common_passwords at a longer list.\n")
        for p in sorted(out):
            f.write(p + "\n")
    print(f"{path}: {len(out)} passwords")


if __name__ == "__main__":
    main()

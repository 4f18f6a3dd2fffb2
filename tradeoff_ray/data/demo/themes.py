"""The demo benchmark's eight small themed databases, with rows drawn deterministically.

Rows come from fixed word lists drawn with a seeded RNG, so every build produces the same databases;
some parents are left without children on purpose ("which authors have no books?"). Five databases
are for training and three for dev, as Spider keeps dev databases out of training.
"""
from __future__ import annotations

import random
from itertools import product

from tradeoff_ray.data.demo.databases import Col, DemoDb, Fk, TableSpec


def _id(name: str) -> Col:
    return Col(name, "INTEGER")


FIRST = ["Ana", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Kenji", "Lena",
         "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Samuel", "Tara", "Umar", "Vera", "Wei", "Yusuf",
         "Zoe", "Leo", "Mia", "Noah", "Olga", "Pablo"]
LAST = ["Abbott", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jensen",
        "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Petrov", "Rossi", "Silva", "Tanaka", "Varga",
        "Weber", "Young", "Zeller", "Mensah"]
CITIES = ["Lisbon", "Oslo", "Lyon", "Porto", "Turin", "Graz", "Ghent", "Bergen"]
COUNTRIES = ["France", "Japan", "Brazil", "Canada", "Kenya", "Norway", "India", "Mexico"]
ADJ = ["Silent", "Golden", "Hidden", "Broken", "Distant", "Burning", "Frozen", "Quiet", "Wild", "Lost",
       "Bright", "Hollow", "Endless", "Crimson", "Velvet", "Paper"]
NOUN = ["River", "Garden", "Mountain", "Harbor", "Letter", "Window", "Forest", "Station", "Mirror", "Island",
        "Bridge", "Lantern", "Orchard", "Compass", "Meadow", "Tower"]


def _people(rng: random.Random, n: int) -> list[str]:
    return [f"{a} {b}" for a, b in rng.sample(list(product(FIRST, LAST)), n)]


def _titles(rng: random.Random, n: int, pattern: str = "The {a} {n}") -> list[str]:
    return [pattern.format(a=a, n=b) for a, b in rng.sample(list(product(ADJ, NOUN)), n)]


def _distinct_ints(rng: random.Random, n: int, lo: int, hi: int) -> list[int]:
    return rng.sample(range(lo, hi + 1), n)


def _parents(rng: random.Random, ids: list[int], share: float = 0.8) -> list[int]:
    """The parent ids children may point at: some parents are left childless on purpose."""
    return sorted(rng.sample(ids, max(1, round(len(ids) * share))))


def _pairs(rng: random.Random, a_ids: list[int], b_ids: list[int], n: int) -> list[tuple[int, int]]:
    return sorted(rng.sample(list(product(a_ids, b_ids)), n))


# ---------------------------------------------------------------- school (train)

COURSES = {"Algebra": "Mathematics", "Geometry": "Mathematics", "Calculus": "Mathematics",
           "Statistics": "Mathematics", "Mechanics": "Physics", "Optics": "Physics", "Electricity": "Physics",
           "World History": "History", "Ancient Rome": "History", "Medieval Europe": "History",
           "Poetry": "Literature", "Modern Novels": "Literature", "Drama": "Literature", "Genetics": "Biology",
           "Ecology": "Biology", "Cell Biology": "Biology", "Drawing": "Art", "Sculpture": "Art"}


def _school_rows(rng: random.Random) -> dict[str, list[tuple]]:
    subjects = sorted(set(COURSES.values()))
    teachers = [(i + 1, name, subjects[i % len(subjects)], rng.randint(1, 35), 38000 + 500 * v)
                for i, (name, v) in enumerate(zip(_people(rng, 12), _distinct_ints(rng, 12, 0, 108)))]
    by_subject = {s: [t[0] for t in teachers if t[2] == s] for s in subjects}
    courses = [(i + 1, title, dept, rng.randint(2, 6), rng.choice(by_subject[dept][:1] + by_subject[dept]))
               for i, (title, dept) in enumerate(COURSES.items())]
    students = [(i + 1, name, rng.choice(CITIES[:6]), rng.randint(17, 25), round(rng.uniform(2.0, 4.0), 2))
                for i, name in enumerate(_people(rng, 30))]
    enrolled = _pairs(rng, _parents(rng, [s[0] for s in students], 0.85), [c[0] for c in courses], 70)
    enrollments = [(s, c, rng.randint(48, 100)) for s, c in enrolled]
    return {"teacher": teachers, "course": courses, "student": students, "enrollment": enrollments}


SCHOOL = DemoDb("school", "train", (
    TableSpec("teacher", "teacher", "teachers", (
        _id("teacher_id"), Col("name", "TEXT", "name", "name"), Col("subject", "TEXT", "subject", "cat"),
        Col("years_experience", "INTEGER", "years of experience", "num"),
        Col("salary", "INTEGER", "salary", "num", additive=True)), pk=("teacher_id",)),
    TableSpec("course", "course", "courses", (
        _id("course_id"), Col("title", "TEXT", "title", "name"), Col("department", "TEXT", "department", "cat"),
        Col("credits", "INTEGER", "number of credits", "num", additive=True), _id("teacher_id")),
        pk=("course_id",), fks=(Fk("teacher_id", "teacher", "taught by"),), quote_names=True),
    TableSpec("student", "student", "students", (
        _id("student_id"), Col("name", "TEXT", "name", "name"), Col("city", "TEXT", "home city", "cat"),
        Col("age", "INTEGER", "age", "num"), Col("gpa", "REAL", "grade point average", "num")),
        pk=("student_id",)),
    TableSpec("enrollment", "enrollment", "enrollments", (
        _id("student_id"), _id("course_id"), Col("grade", "INTEGER", "grade", "num")),
        pk=("student_id", "course_id"), fks=(Fk("student_id", "student", "of"), Fk("course_id", "course", "in")),
        verb="enrolled in"),
), _school_rows)

# ---------------------------------------------------------------- shop (train)

PRODUCTS = {"Desk Lamp": "home", "Wool Blanket": "home", "Floor Rug": "home", "Wall Clock": "home",
            "Coffee Grinder": "kitchen", "Chef Knife": "kitchen", "Tea Kettle": "kitchen", "Cast Iron Pan": "kitchen",
            "Rain Jacket": "clothing", "Hiking Boots": "clothing", "Linen Shirt": "clothing", "Wool Scarf": "clothing",
            "Headphones": "electronics", "Smart Watch": "electronics", "Phone Charger": "electronics",
            "Bluetooth Speaker": "electronics", "Yoga Mat": "sports", "Tennis Racket": "sports",
            "Jump Rope": "sports", "Water Bottle": "sports"}


def _shop_rows(rng: random.Random) -> dict[str, list[tuple]]:
    customers = [(i + 1, name, rng.choice(CITIES), rng.choice(["gold", "silver", "basic", "basic"]),
                  rng.randint(19, 72)) for i, name in enumerate(_people(rng, 25))]
    prices = [round(p + 0.99, 2) for p in _distinct_ints(rng, len(PRODUCTS), 4, 299)]
    products = [(i + 1, name, cat, prices[i], rng.randint(0, 200)) for i, (name, cat) in enumerate(PRODUCTS.items())]
    buyers, goods = _parents(rng, [c[0] for c in customers]), _parents(rng, [p[0] for p in products], 0.85)
    purchases = [(i + 1, rng.choice(buyers), rng.choice(goods), rng.randint(1, 5), rng.randint(2019, 2024))
                 for i in range(60)]
    return {"customer": customers, "product": products, "purchase": purchases}


SHOP = DemoDb("shop", "train", (
    TableSpec("customer", "customer", "customers", (
        _id("customer_id"), Col("name", "TEXT", "name", "name"), Col("city", "TEXT", "city", "cat"),
        Col("membership", "TEXT", "membership level", "cat"), Col("age", "INTEGER", "age", "num")),
        pk=("customer_id",)),
    TableSpec("product", "product", "products", (
        _id("product_id"), Col("name", "TEXT", "name", "name"), Col("category", "TEXT", "category", "cat"),
        Col("price", "REAL", "price", "num"), Col("stock", "INTEGER", "stock", "num", additive=True)),
        pk=("product_id",), quote_names=True),
    TableSpec("purchase", "purchase", "purchases", (
        _id("purchase_id"), _id("customer_id"), _id("product_id"),
        Col("quantity", "INTEGER", "quantity", "num", additive=True),
        Col("purchase_year", "INTEGER", "purchase year", "cat")),
        pk=("purchase_id",), fks=(Fk("customer_id", "customer", "made by"),
                                  Fk("product_id", "product", "that include")), verb="bought"),
), _shop_rows)

# ---------------------------------------------------------------- library (train)

GENRES = ["mystery", "fantasy", "history", "science", "poetry", "romance"]


def _library_rows(rng: random.Random) -> dict[str, list[tuple]]:
    authors = [(i + 1, name, rng.choice(COUNTRIES), by) for i, (name, by) in
               enumerate(zip(_people(rng, 14), _distinct_ints(rng, 14, 1921, 1990)))]
    writers = _parents(rng, [a[0] for a in authors])
    books = []
    for i, title in enumerate(_titles(rng, 28)):
        author = rng.choice(writers)
        born = authors[author - 1][3]
        books.append((i + 1, title, rng.choice(GENRES), 100 + 7 * rng.randint(0, 110),
                      rng.randint(born + 22, min(2023, born + 75)), author))
    members = [(i + 1, name, rng.choice(CITIES[2:]), rng.randint(2010, 2024))
               for i, name in enumerate(_people(rng, 22))]
    readers, lent = _parents(rng, [m[0] for m in members]), _parents(rng, [b[0] for b in books], 0.85)
    loans = [(i + 1, rng.choice(lent), rng.choice(readers), rng.randint(1, 30)) for i in range(50)]
    return {"author": authors, "book": books, "member": members, "loan": loans}


LIBRARY = DemoDb("library", "train", (
    TableSpec("author", "author", "authors", (
        _id("author_id"), Col("name", "TEXT", "name", "name"), Col("country", "TEXT", "country", "cat"),
        Col("birth_year", "INTEGER", "birth year", "num")), pk=("author_id",)),
    TableSpec("book", "book", "books", (
        _id("book_id"), Col("title", "TEXT", "title", "name"), Col("genre", "TEXT", "genre", "cat"),
        Col("pages", "INTEGER", "number of pages", "num", additive=True),
        Col("published_year", "INTEGER", "publication year", "num"), _id("author_id")),
        pk=("book_id",), fks=(Fk("author_id", "author", "written by"),), quote_names=True),
    TableSpec("member", "library member", "library members", (
        _id("member_id"), Col("name", "TEXT", "name", "name"), Col("city", "TEXT", "city", "cat"),
        Col("join_year", "INTEGER", "year of joining", "num")), pk=("member_id",)),
    TableSpec("loan", "loan", "loans", (
        _id("loan_id"), _id("book_id"), _id("member_id"), Col("days", "INTEGER", "length in days", "num")),
        pk=("loan_id",), fks=(Fk("member_id", "member", "made by"), Fk("book_id", "book", "of")),
        verb="borrowed"),
), _library_rows)

# ---------------------------------------------------------------- music (train)

MUSIC_GENRES = ["rock", "jazz", "pop", "folk", "electronic"]


def _music_rows(rng: random.Random) -> dict[str, list[tuple]]:
    names = _titles(rng, 12, "The {a} {n}s")
    artists = [(i + 1, name, rng.choice(MUSIC_GENRES), rng.choice(COUNTRIES), y)
               for i, (name, y) in enumerate(zip(names, _distinct_ints(rng, 12, 1962, 2015)))]
    makers = _parents(rng, [a[0] for a in artists], 0.85)
    sales = _distinct_ints(rng, 24, 5, 950)
    albums = []
    for i, title in enumerate(_titles(rng, 24, "{a} {n}")):
        artist = rng.choice(makers)
        albums.append((i + 1, title, rng.randint(artists[artist - 1][4] + 1, 2024), sales[i], artist))
    words = [f"{a} {b}" for a, b in rng.sample(list(product(["Song of", "Dancing in", "Waiting for", "Lights of",
                                                             "Echoes of", "Return to"], NOUN)), 60)]
    songs = [(i + 1, title, rng.randint(120, 420), rng.randint(1, 900), rng.choice(albums)[0])
             for i, title in enumerate(words)]
    return {"artist": artists, "album": albums, "song": songs}


MUSIC = DemoDb("music", "train", (
    TableSpec("artist", "artist", "artists", (
        _id("artist_id"), Col("name", "TEXT", "name", "name"), Col("genre", "TEXT", "genre", "cat"),
        Col("country", "TEXT", "country", "cat"), Col("formed_year", "INTEGER", "year of formation", "num")),
        pk=("artist_id",)),
    TableSpec("album", "album", "albums", (
        _id("album_id"), Col("title", "TEXT", "title", "name"), Col("release_year", "INTEGER", "release year", "num"),
        Col("sales", "INTEGER", "sales in thousands of copies", "num", additive=True), _id("artist_id")),
        pk=("album_id",), fks=(Fk("artist_id", "artist", "released by"),), quote_names=True),
    TableSpec("song", "song", "songs", (
        _id("song_id"), Col("title", "TEXT", "title", "name"),
        Col("duration_seconds", "INTEGER", "duration in seconds", "num"),
        Col("plays", "INTEGER", "number of plays in thousands", "num", additive=True), _id("album_id")),
        pk=("song_id",), fks=(Fk("album_id", "album", "on"),), quote_names=True),
), _music_rows)

# ---------------------------------------------------------------- hospital (train)

DEPARTMENTS = ["Cardiology", "Neurology", "Pediatrics", "Oncology", "Radiology", "Orthopedics", "Dermatology"]


def _hospital_rows(rng: random.Random) -> dict[str, list[tuple]]:
    budgets = _distinct_ints(rng, len(DEPARTMENTS), 200, 2500)
    departments = [(i + 1, name, rng.randint(1, 6), budgets[i]) for i, name in enumerate(DEPARTMENTS)]
    staffed = _parents(rng, [d[0] for d in departments], 0.86)
    doctors = [(i + 1, name, rng.choice(["resident", "attending", "attending", "chief"]), rng.randint(1, 38),
                rng.choice(staffed)) for i, name in enumerate(_people(rng, 18))]
    patients = [(i + 1, name, rng.randint(1, 92), rng.choice(CITIES[:5]), rng.choice(["public", "private", "none"]))
                for i, name in enumerate(_people(rng, 30))]
    seen, seeing = _parents(rng, [p[0] for p in patients], 0.85), _parents(rng, [d[0] for d in doctors], 0.85)
    appointments = [(i + 1, rng.choice(seeing), rng.choice(seen), 40 + 5 * rng.randint(0, 112)) for i in range(60)]
    return {"department": departments, "doctor": doctors, "patient": patients, "appointment": appointments}


HOSPITAL = DemoDb("hospital", "train", (
    TableSpec("department", "department", "departments", (
        _id("department_id"), Col("name", "TEXT", "name", "name"), Col("floor", "INTEGER", "floor", "cat"),
        Col("budget", "INTEGER", "budget in thousands", "num", additive=True)), pk=("department_id",)),
    TableSpec("doctor", "doctor", "doctors", (
        _id("doctor_id"), Col("name", "TEXT", "name", "name"), Col("position", "TEXT", "position", "cat"),
        Col("years_experience", "INTEGER", "years of experience", "num"), _id("department_id")),
        pk=("doctor_id",), fks=(Fk("department_id", "department", "working in"),)),
    TableSpec("patient", "patient", "patients", (
        _id("patient_id"), Col("name", "TEXT", "name", "name"), Col("age", "INTEGER", "age", "num"),
        Col("city", "TEXT", "city", "cat"), Col("insurance", "TEXT", "insurance type", "cat")),
        pk=("patient_id",)),
    TableSpec("appointment", "appointment", "appointments", (
        _id("appointment_id"), _id("doctor_id"), _id("patient_id"), Col("cost", "INTEGER", "cost", "num",
                                                                         additive=True)),
        pk=("appointment_id",), fks=(Fk("patient_id", "patient", "of"), Fk("doctor_id", "doctor", "with")),
        verb="had appointments with"),
), _hospital_rows)

# ---------------------------------------------------------------- flights (dev)

AIRLINES = ["Northwind Air", "Blue Heron Airways", "Coastal Jet", "Summit Airlines", "Aurora Air",
            "Meridian Airways", "Falcon Express", "Harbor Air"]


def _flight_rows(rng: random.Random) -> dict[str, list[tuple]]:
    airlines = [(i + 1, name, rng.choice(COUNTRIES), y, rng.randint(4, 140))
                for i, (name, y) in enumerate(zip(AIRLINES, _distinct_ints(rng, len(AIRLINES), 1950, 2012)))]
    cities = CITIES + ["Nantes", "Bilbao", "Aarhus", "Split"]
    elevations = _distinct_ints(rng, len(cities), 2, 900)
    airports = [(i + 1, f"{city} {rng.choice(['International', 'Regional', 'Central'])}", city,
                 rng.choice(COUNTRIES[:5]), e) for i, (city, e) in enumerate(zip(cities, elevations))]
    flying, used = _parents(rng, [a[0] for a in airlines], 0.88), _parents(rng, [a[0] for a in airports], 0.84)
    flights = []
    for i in range(40):
        airline = rng.choice(flying)
        origin, dest = rng.sample(used, 2)
        code = "".join(w[0] for w in AIRLINES[airline - 1].split()[:2]).upper()
        flights.append((i + 1, f"{code}{100 + i}", airline, origin, dest, 10 * rng.randint(15, 320),
                        rng.randint(39, 480)))
    return {"airline": airlines, "airport": airports, "flight": flights}


FLIGHTS = DemoDb("flights", "dev", (
    TableSpec("airline", "airline", "airlines", (
        _id("airline_id"), Col("name", "TEXT", "name", "name"), Col("country", "TEXT", "country", "cat"),
        Col("founded_year", "INTEGER", "founding year", "num"), Col("fleet_size", "INTEGER", "fleet size", "num",
                                                                    additive=True)),
        pk=("airline_id",)),
    TableSpec("airport", "airport", "airports", (
        _id("airport_id"), Col("name", "TEXT", "name", "name"), Col("city", "TEXT", "city", "cat"),
        Col("country", "TEXT", "country", "cat"), Col("elevation", "INTEGER", "elevation in meters", "num")),
        pk=("airport_id",)),
    TableSpec("flight", "flight", "flights", (
        _id("flight_id"), Col("flight_number", "TEXT", "flight number", "name"), _id("airline_id"),
        _id("origin_airport_id"), _id("destination_airport_id"), Col("distance", "INTEGER", "distance in km", "num"),
        Col("price", "INTEGER", "ticket price", "num")),
        pk=("flight_id",), fks=(Fk("airline_id", "airline", "operated by"),
                                Fk("origin_airport_id", "airport", "departing from"),
                                Fk("destination_airport_id", "airport", "arriving at"))),
), _flight_rows)

# ---------------------------------------------------------------- museum (dev)

MUSEUMS = ["Museum of Light", "City Art Gallery", "Harbor Museum", "Modern Art House", "Old Mill Museum",
           "Museum of the North", "Glass Pavilion"]
MEDIA = ["oil painting", "sculpture", "photograph", "watercolor", "textile"]


def _museum_rows(rng: random.Random) -> dict[str, list[tuple]]:
    museums = [(i + 1, name, rng.choice(CITIES), y, rng.randint(8, 160))
               for i, (name, y) in enumerate(zip(MUSEUMS, _distinct_ints(rng, len(MUSEUMS), 1850, 2010)))]
    holding = _parents(rng, [m[0] for m in museums], 0.86)
    values = _distinct_ints(rng, 30, 5, 4000)
    artworks = [(i + 1, title, rng.choice(MEDIA), rng.randint(1650, 2020), values[i], rng.choice(holding))
                for i, title in enumerate(_titles(rng, 30, "{a} {n}"))]
    visitors = [(i + 1, name, rng.randint(8, 85), rng.choice(COUNTRIES)) for i, name in enumerate(_people(rng, 24))]
    came, open_ = _parents(rng, [v[0] for v in visitors], 0.85), [m[0] for m in museums]
    visits = [(i + 1, rng.choice(open_), rng.choice(came), rng.choice([0, 8, 12, 15, 20])) for i in range(50)]
    return {"museum": museums, "artwork": artworks, "visitor": visitors, "visit": visits}


MUSEUM = DemoDb("museum", "dev", (
    TableSpec("museum", "museum", "museums", (
        _id("museum_id"), Col("name", "TEXT", "name", "name"), Col("city", "TEXT", "city", "cat"),
        Col("opened_year", "INTEGER", "opening year", "num"), Col("staff", "INTEGER", "number of staff", "num",
                                                                  additive=True)),
        pk=("museum_id",), quote_names=True),
    TableSpec("artwork", "artwork", "artworks", (
        _id("artwork_id"), Col("title", "TEXT", "title", "name"), Col("medium", "TEXT", "medium", "cat"),
        Col("year_created", "INTEGER", "year of creation", "num"),
        Col("value", "INTEGER", "value in thousands of dollars", "num", additive=True), _id("museum_id")),
        pk=("artwork_id",), fks=(Fk("museum_id", "museum", "held by"),), quote_names=True),
    TableSpec("visitor", "visitor", "visitors", (
        _id("visitor_id"), Col("name", "TEXT", "name", "name"), Col("age", "INTEGER", "age", "num"),
        Col("country", "TEXT", "country", "cat")), pk=("visitor_id",)),
    TableSpec("visit", "visit", "visits", (
        _id("visit_id"), _id("museum_id"), _id("visitor_id"), Col("ticket_price", "INTEGER", "ticket price", "num")),
        pk=("visit_id",), fks=(Fk("visitor_id", "visitor", "made by"), Fk("museum_id", "museum", "to")),
        verb="visited"),
), _museum_rows)

# ---------------------------------------------------------------- football (dev)

TEAMS = ["Riverside United", "Harbor City FC", "Northern Stars", "Valley Rovers", "Red Lions", "Blue Falcons",
         "Mountain Athletic", "Old Town FC"]
POSITIONS = ["goalkeeper", "defender", "midfielder", "forward"]


def _football_rows(rng: random.Random) -> dict[str, list[tuple]]:
    teams = [(i + 1, name, CITIES[i], y, c) for i, (name, y, c) in
             enumerate(zip(TEAMS, _distinct_ints(rng, 8, 1880, 1990), _distinct_ints(rng, 8, 8, 75)))]
    squads = _parents(rng, [t[0] for t in teams], 0.88)
    players = [(i + 1, name, rng.choice(POSITIONS), rng.randint(17, 38), rng.randint(0, 30), rng.choice(squads))
               for i, name in enumerate(_people(rng, 36))]
    coaches = [(i + 1, name, rng.choice(COUNTRIES), rng.randint(35, 70), t[0])
               for i, (name, t) in enumerate(zip(_people(rng, 7), teams))]
    games = []
    for i in range(30):
        home, away = rng.sample([t[0] for t in teams], 2)
        games.append((i + 1, home, away, rng.randint(0, 4), rng.randint(0, 3), rng.randint(3, 70) * 1000))
    return {"team": teams, "player": players, "coach": coaches, "game": games}


FOOTBALL = DemoDb("football", "dev", (
    TableSpec("team", "team", "teams", (
        _id("team_id"), Col("name", "TEXT", "name", "name"), Col("city", "TEXT", "city", "cat"),
        Col("founded_year", "INTEGER", "founding year", "num"),
        Col("stadium_capacity", "INTEGER", "stadium capacity in thousands", "num")), pk=("team_id",)),
    TableSpec("player", "player", "players", (
        _id("player_id"), Col("name", "TEXT", "name", "name"), Col("position", "TEXT", "position", "cat"),
        Col("age", "INTEGER", "age", "num"), Col("goals", "INTEGER", "number of goals", "num", additive=True),
        _id("team_id")), pk=("player_id",), fks=(Fk("team_id", "team", "playing for"),)),
    TableSpec("coach", "coach", "coaches", (
        _id("coach_id"), Col("name", "TEXT", "name", "name"), Col("nationality", "TEXT", "nationality", "cat"),
        Col("age", "INTEGER", "age", "num"), _id("team_id")),
        pk=("coach_id",), fks=(Fk("team_id", "team", "coaching"),)),
    TableSpec("game", "game", "games", (
        _id("game_id"), _id("home_team_id"), _id("away_team_id"), Col("home_goals", "INTEGER", "home goals", "num"),
        Col("away_goals", "INTEGER", "away goals", "num"), Col("attendance", "INTEGER", "attendance", "num",
                                                               additive=True)),
        pk=("game_id",), fks=(Fk("home_team_id", "team", "hosted by"), Fk("away_team_id", "team", "played away by"))),
), _football_rows)

DATABASES: tuple[DemoDb, ...] = (SCHOOL, SHOP, LIBRARY, MUSIC, HOSPITAL, FLIGHTS, MUSEUM, FOOTBALL)


DATABASES: tuple[DemoDb, ...] = (SCHOOL, SHOP, LIBRARY, MUSIC, HOSPITAL, FLIGHTS, MUSEUM, FOOTBALL)

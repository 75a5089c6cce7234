"""A deterministic, realistic demo catalog with browsing histories.

Shapes follow real shops: a dozen departments with their own vocabulary and
price ranges, log-normal prices, ratings clustered around 4, Zipf-like
popularity, shoppers with two or three favourite departments, and a funnel
where views outnumber clicks, likes, carts and purchases.
"""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from recommender.models import BrowsingEvent, Category, Item
from recommender.serializers import item_to_dict
from recommender.services.engine import ACTION_WEIGHTS
from sync.services import changes_record

Progress = Callable[[str], None]

SEED = 20261122
_BATCH = 2000

# name: (median price, nouns, adjectives/tags)
DEPARTMENTS: dict[str, tuple[float, list[str], list[str]]] = {
    "Books": (
        18,
        ["Novel", "Cookbook", "Atlas", "Biography", "Guide", "Anthology"],
        ["bestseller", "hardcover", "paperback", "illustrated", "classic", "signed"],
    ),
    "Electronics": (
        120,
        ["Headphones", "Speaker", "Charger", "Tablet", "Camera", "Keyboard"],
        ["wireless", "bluetooth", "compact", "noise-cancelling", "usb-c", "4k"],
    ),
    "Home & Kitchen": (
        45,
        ["Kettle", "Skillet", "Blender", "Knife Set", "Lamp", "Towel Set"],
        ["stainless", "non-stick", "ceramic", "cotton", "dishwasher-safe", "modern"],
    ),
    "Sports": (
        60,
        ["Running Shoes", "Yoga Mat", "Dumbbells", "Bike Helmet", "Racket", "Jersey"],
        ["lightweight", "breathable", "pro", "training", "waterproof", "grip"],
    ),
    "Toys": (
        25,
        ["Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite", "Robot Kit"],
        ["educational", "family", "ages-3-plus", "wooden", "stem", "collectible"],
    ),
    "Beauty": (
        22,
        ["Serum", "Lipstick", "Shampoo", "Face Mask", "Perfume", "Lotion"],
        ["vegan", "organic", "fragrance-free", "hydrating", "spf", "travel-size"],
    ),
    "Garden": (
        35,
        ["Planter", "Hose", "Pruner", "Seed Kit", "Bird Feeder", "Lantern"],
        ["outdoor", "weatherproof", "solar", "heirloom", "terracotta", "ergonomic"],
    ),
    "Music": (
        30,
        [
            "Vinyl Record",
            "Guitar Strings",
            "Ukulele",
            "Metronome",
            "Songbook",
            "Drum Pad",
        ],
        ["jazz", "acoustic", "limited-edition", "beginner", "remastered", "studio"],
    ),
    "Movies": (
        15,
        [
            "Blu-ray",
            "Box Set",
            "Documentary",
            "Director's Cut",
            "Anime Series",
            "Classic Film",
        ],
        ["drama", "comedy", "sci-fi", "thriller", "family", "award-winning"],
    ),
    "Grocery": (
        8,
        ["Coffee Beans", "Olive Oil", "Green Tea", "Dark Chocolate", "Pasta", "Honey"],
        ["organic", "fair-trade", "single-origin", "gluten-free", "bulk", "gourmet"],
    ),
    "Fashion": (
        55,
        ["Jacket", "Sneakers", "Scarf", "Backpack", "Sunglasses", "Wallet"],
        ["leather", "denim", "slim-fit", "recycled", "unisex", "vintage"],
    ),
    "Outdoors": (
        80,
        ["Tent", "Sleeping Bag", "Headlamp", "Water Filter", "Hiking Poles", "Cooler"],
        ["ultralight", "4-season", "rechargeable", "insulated", "packable", "rugged"],
    ),
}
_BRANDS = [
    "Northwind",
    "Acme",
    "Bluebird",
    "Cedar & Co",
    "Helio",
    "Kestrel",
    "Lumen",
    "Maple",
    "Orbit",
    "Pioneer",
    "Quill",
    "Summit",
    "Tandem",
    "Vela",
    "Zephyr",
]
_ACTIONS = list(ACTION_WEIGHTS)
_ACTION_P = np.array([0.58, 0.2, 0.11, 0.07, 0.04])


def demo_seed(
    *, n_items: int, n_users: int, progress: Progress | None = None
) -> dict[str, int]:
    """Create the demo catalog and shoppers; an existing demo is left as it is.

    Returns
    -------
    dict
        Counts of what was created: ``categories``, ``items``, ``users``,
        ``events``.
    """
    say = progress or (lambda message: None)
    rng = np.random.default_rng(SEED)
    created = {"categories": 0, "items": 0, "users": 0, "events": 0}
    names = list(DEPARTMENTS)
    categories = {}
    for name in names:
        category, was_created = Category.objects.get_or_create(name=name)
        categories[name] = category
        created["categories"] += int(was_created)

    existing = set(
        Item.objects.filter(external_id__startswith="demo:").values_list(
            "external_id", flat=True
        )
    )
    now = timezone.now()
    dept_of_item = rng.integers(0, len(names), size=n_items)
    price_noise = rng.lognormal(0.0, 0.45, size=n_items)
    ratings = np.clip(rng.normal(4.1, 0.55, size=n_items), 1.0, 5.0)
    ages_days = rng.exponential(120.0, size=n_items)
    for start in range(0, n_items, _BATCH):
        batch = []
        for i in range(start, min(n_items, start + _BATCH)):
            external_id = f"demo:{i + 1}"
            if external_id in existing:
                continue
            name = names[dept_of_item[i]]
            median, nouns, words = DEPARTMENTS[name]
            noun = nouns[(i // len(names)) % len(nouns)]
            tags = [
                words[j]
                for j in sorted({(i * 7 + k * 3) % len(words) for k in range(3)})
            ]
            brand = _BRANDS[(i * 31) % len(_BRANDS)]
            batch.append(
                Item(
                    title=f"{brand} {tags[0].replace('-', ' ').title()} {noun}",
                    description=f"A {', '.join(tags)} {noun.lower()} by {brand}.",
                    category=categories[name],
                    tags=", ".join(tags),
                    price=Decimal(f"{median * price_noise[i]:.2f}"),
                    rating=round(float(ratings[i]), 1),
                    year=int(now.year - min(ages_days[i] // 365, 20)),
                    external_id=external_id,
                    created=now - timedelta(days=float(ages_days[i])),
                )
            )
        if batch:
            with transaction.atomic():
                Item.objects.bulk_create(batch)
                changes_record(
                    model_name="item",
                    changes=[
                        ("upsert", str(item.pk), item_to_dict(item)) for item in batch
                    ],
                )
            created["items"] += len(batch)
        say(f"Items {min(n_items, start + _BATCH)}/{n_items}…")

    items = list(
        Item.objects.filter(external_id__startswith="demo:")
        .order_by("id")
        .values_list("id", "category__name")
    )
    if not items:
        return created
    item_ids = np.array([pk for pk, _ in items], dtype=np.int64)
    dept = np.array([names.index(name) for _, name in items], dtype=np.int64)
    # Zipf-like popularity: a few items get most of the attention.
    popularity = 1.0 / np.arange(1, len(items) + 1) ** 0.9
    popularity = popularity[rng.permutation(len(items))]
    by_dept = [np.flatnonzero(dept == d) for d in range(len(names))]

    User = get_user_model()
    password = make_password(None)  # demo shoppers cannot log in
    usernames = [f"shopper{u:04d}" for u in range(1, n_users + 1)]
    have = set(
        User.objects.filter(username__in=usernames).values_list("username", flat=True)
    )
    new_users = [
        User(username=name, password=password) for name in usernames if name not in have
    ]
    User.objects.bulk_create(new_users, batch_size=_BATCH)
    created["users"] = len(new_users)
    new_names = {user.username for user in new_users}
    users = User.objects.filter(username__in=new_names).order_by("username")
    events = []
    for user in users:
        favourites = rng.choice(len(names), size=int(rng.integers(2, 4)), replace=False)
        pool = np.concatenate([by_dept[d] for d in favourites if len(by_dept[d])])
        if not len(pool):
            continue
        weights = popularity[pool] / popularity[pool].sum()
        n_events = int(rng.integers(15, 60))
        picks = rng.choice(pool, size=n_events, p=weights)
        actions = rng.choice(len(_ACTIONS), size=n_events, p=_ACTION_P)
        offsets = np.sort(rng.uniform(0, 30 * 86400, size=n_events))[::-1]
        for pick, action, offset in zip(picks, actions, offsets, strict=True):
            events.append(
                BrowsingEvent(
                    user=user,
                    item_id=int(item_ids[pick]),
                    action=_ACTIONS[action],
                    weight=ACTION_WEIGHTS[_ACTIONS[action]],
                    created=now - timedelta(seconds=float(offset)),
                )
            )
    BrowsingEvent.objects.bulk_create(events, batch_size=_BATCH)
    created["events"] = len(events)
    say(f"Users {len(new_users)}, events {len(events)}.")
    return created


DEMO_ACCOUNTS = {"staff": "recsite-staff", "shopper": "recsite-shopper"}


def demo_accounts_ensure() -> dict[str, str]:
    """Create (or reset) the demo staff and shopper logins; return name → password."""
    User = get_user_model()
    for username, password in DEMO_ACCOUNTS.items():
        user, _ = User.objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = username == "staff"
        user.set_password(password)
        user.save()
    return dict(DEMO_ACCOUNTS)

"""The bundled data is the first Arabic a user sees and the stand-in models' whole corpus: hold it to its spec."""

import re
from collections import Counter

from hiwar.arabic import arabic_ratio

ARAB_LEAGUE = set("DZ BH KM DJ EG IQ JO KW LB LY MR MA OM PS QA SA SO SD SY TN AE YE".split())


def test_topics_table(bundled):
    topics = bundled.topics
    assert len(topics) == 93
    assert topics["topic_id"].str.fullmatch("[a-z_]+").all()
    assert (topics[["name_en", "name_ar", "description_ar"]] != "").all().all()
    assert all(arabic_ratio(t) == 1.0 for t in topics["name_ar"])


def test_countries_table(bundled):
    countries = bundled.countries
    assert len(countries) == 151
    assert countries["iso2"].str.fullmatch("[A-Z]{2}").all() and countries["iso3"].str.fullmatch("[A-Z]{3}").all()
    assert countries["iso3"].is_unique
    assert "NA" in countries.index  # Namibia survives CSV reading
    assert set(countries.index[countries["region"] == "Arab World"]) == ARAB_LEAGUE


def test_conversations_follow_the_spec(bundled):
    convs = bundled.conversations
    assert len(convs) >= 120
    assert len({c["id"] for c in convs}) == len(convs)
    assert len({c["topic"] for c in convs}) >= 40
    exchanges = Counter(sum(m["role"] == "assistant" for m in c["messages"]) for c in convs)
    assert set(exchanges) <= set(range(3, 8)) and len(exchanges) == 5
    for c in convs:
        assert c["country"] is None or c["country"] in bundled.countries.index, c["id"]
        for m in c["messages"]:
            assert not re.search("[A-Za-z]", m["content"]), (c["id"], m["content"])
            assert arabic_ratio(m["content"]) == 1.0

import pytest

from hiwar.arabic import arabic_ratio, latin_words, normalize


@pytest.mark.parametrize("variant, canonical", [
    ("أحمد", "احمد"), ("إسلام", "اسلام"), ("آمال", "امال"), ("ٱلقمر", "القمر"),  # alef/hamza forms
    ("مستشفى", "مستشفي"),  # alef maqsura
    ("مَدْرَسَةٌ", "مدرسة"),  # tashkeel
    ("جمـــيل", "جميل"),  # tatweel
    ("کتاب", "كتاب"), ("فارسی", "فارسي"),  # Persian kaf and yeh
    ("٢٠٢٦", "2026"), ("۱۴۰۵", "1405"),  # Arabic-Indic and Eastern digits
    ("سلا\u200bم", "سلام"), ("\u202bمرحبا\u202c", "مرحبا"), ("\ufeffنعم", "نعم"),  # invisibles
    ("ﻻ", "لا"),  # presentation-form ligature, via NFKC
    ("كلمة   و\nكلمة", "كلمة و كلمة"),  # whitespace
])
def test_normalize_each_character_class(variant, canonical):
    assert normalize(variant) == canonical


def test_teh_marbuta_is_optional():
    assert normalize("مدرسة") == "مدرسة"
    assert normalize("مدرسة", teh_marbuta=True) == "مدرسه"


def test_identical_arabic_strings_normalize_equal_and_different_ones_do_not():
    a = "ذهبتُ إلى المكتبة"
    assert normalize(a) == normalize("ذهبت الى المكتبة")
    assert normalize(a) != normalize("ذهبت إلى المدرسة")


def test_arabic_ratio_and_latin_leakage():
    assert arabic_ratio("هذا نص عربي") == 1.0
    assert arabic_ratio("this is English") == 0.0
    assert arabic_ratio("123 ،؟") == 0.0
    mixed = "استخدم Python في المشروع"
    assert 0.5 < arabic_ratio(mixed) < 1.0
    assert latin_words(mixed) == ["Python"]

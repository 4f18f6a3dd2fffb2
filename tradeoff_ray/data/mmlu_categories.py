"""The official MMLU subject -> category map (57 subjects, 4 categories).

Facts transcribed from hendrycks/test `categories.py` (commit 4450500f, 2023-04-24): each subject's
subcategory and the category that subcategory belongs to. Category keys are the short names of
`tradeoff_ray.data.types.CATEGORIES`; `CATEGORY_TITLES` gives the names the paper prints.
Full-test sizes per category: STEM 18 subjects / 3018 questions, humanities 13 / 4705,
social sciences 12 / 3077, other 14 / 3242 (14,042 in all).
"""
from __future__ import annotations

# subject -> (category, subcategory)
SUBJECTS: dict[str, tuple[str, str]] = {
    # STEM (18 subjects)
    "abstract_algebra": ("STEM", "math"),
    "astronomy": ("STEM", "physics"),
    "college_biology": ("STEM", "biology"),
    "college_chemistry": ("STEM", "chemistry"),
    "college_computer_science": ("STEM", "computer science"),
    "college_mathematics": ("STEM", "math"),
    "college_physics": ("STEM", "physics"),
    "computer_security": ("STEM", "computer science"),
    "conceptual_physics": ("STEM", "physics"),
    "electrical_engineering": ("STEM", "engineering"),
    "elementary_mathematics": ("STEM", "math"),
    "high_school_biology": ("STEM", "biology"),
    "high_school_chemistry": ("STEM", "chemistry"),
    "high_school_computer_science": ("STEM", "computer science"),
    "high_school_mathematics": ("STEM", "math"),
    "high_school_physics": ("STEM", "physics"),
    "high_school_statistics": ("STEM", "math"),
    "machine_learning": ("STEM", "computer science"),
    # humanities (13 subjects)
    "formal_logic": ("humanities", "philosophy"),
    "high_school_european_history": ("humanities", "history"),
    "high_school_us_history": ("humanities", "history"),
    "high_school_world_history": ("humanities", "history"),
    "international_law": ("humanities", "law"),
    "jurisprudence": ("humanities", "law"),
    "logical_fallacies": ("humanities", "philosophy"),
    "moral_disputes": ("humanities", "philosophy"),
    "moral_scenarios": ("humanities", "philosophy"),
    "philosophy": ("humanities", "philosophy"),
    "prehistory": ("humanities", "history"),
    "professional_law": ("humanities", "law"),
    "world_religions": ("humanities", "philosophy"),
    # social_sciences (12 subjects)
    "econometrics": ("social_sciences", "economics"),
    "high_school_geography": ("social_sciences", "geography"),
    "high_school_government_and_politics": ("social_sciences", "politics"),
    "high_school_macroeconomics": ("social_sciences", "economics"),
    "high_school_microeconomics": ("social_sciences", "economics"),
    "high_school_psychology": ("social_sciences", "psychology"),
    "human_sexuality": ("social_sciences", "culture"),
    "professional_psychology": ("social_sciences", "psychology"),
    "public_relations": ("social_sciences", "politics"),
    "security_studies": ("social_sciences", "politics"),
    "sociology": ("social_sciences", "culture"),
    "us_foreign_policy": ("social_sciences", "politics"),
    # other (14 subjects)
    "anatomy": ("other", "health"),
    "business_ethics": ("other", "business"),
    "clinical_knowledge": ("other", "health"),
    "college_medicine": ("other", "health"),
    "global_facts": ("other", "other"),
    "human_aging": ("other", "health"),
    "management": ("other", "business"),
    "marketing": ("other", "business"),
    "medical_genetics": ("other", "health"),
    "miscellaneous": ("other", "other"),
    "nutrition": ("other", "health"),
    "professional_accounting": ("other", "other"),
    "professional_medicine": ("other", "health"),
    "virology": ("other", "health"),
}

SUBJECT_CATEGORY: dict[str, str] = {subject: cat for subject, (cat, _sub) in SUBJECTS.items()}

CATEGORY_TITLES: dict[str, str] = {
    "STEM": "STEM",
    "humanities": "humanities",
    "social_sciences": "social sciences",
    "other": "other (business, health, misc.)",
}


def subjects_of(category: str) -> list[str]:
    """The subjects of one category, sorted."""
    return sorted(s for s, c in SUBJECT_CATEGORY.items() if c == category)

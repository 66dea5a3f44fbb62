"""Language identification for generated queries, and the quality summary built on it.

Main identifier: multinomial naive Bayes over character 1-4-grams (sklearn's `char_wb`
analyzer), trained on SIB-200 (FLORES-200) train sentences of the study's languages; it
covers every one of them, including Twi, Bemba and Fon that no packaged identifier knows.
Saved in the model cache as `.npz` (log-probabilities, priors) + `.json` (languages, n-gram
vocabulary), never pickle. `sib_accuracy` measures it on SIB-200 test sentences, whole and cut
to their first 6 words (question-sized).

Second opinion: CLD3 from the `cld3-py` wheel (module `gcld3`, model compiled into the
extension, offline), for the languages it covers (`CLD3_CODES`); None elsewhere or when the
package is absent.

`query_quality(rows, classifier)`: per language of generated rows, language-ID agreement,
duplicate rate, length in words, examples.

Not here: generating queries (qgen.py), any decision to drop queries.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xlir.data.bitext import flores_sentences
from xlir.storage import atomic_path, model_cache, read_json, write_json

log = logging.getLogger(__name__)

DEFAULT_LANGUAGES = [
    "hau_Latn", "ibo_Latn", "kin_Latn", "swh_Latn", "twi_Latn", "yor_Latn", "zul_Latn",
    "bem_Latn", "fon_Latn", "eng_Latn", "fra_Latn", "amh_Ethi", "kor_Hang", "arb_Arab",
    "ben_Beng", "fin_Latn", "ind_Latn", "rus_Cyrl", "tel_Telu",
    # Neighbours a generator drifts into (Bantu and Kwa languages beside the AfriQA ones).
    "xho_Latn", "nya_Latn", "sna_Latn", "lin_Latn", "ewe_Latn", "som_Latn",
]
CLD3_CODES = {"hau": "ha", "ibo": "ig", "swh": "sw", "yor": "yo", "zul": "zu", "eng": "en",
              "fra": "fr", "amh": "am", "kor": "ko", "arb": "ar", "ben": "bn", "fin": "fi",
              "ind": "id", "rus": "ru", "tel": "te", "xho": "xh", "nya": "ny", "sna": "sn",
              "som": "so"}
NGRAMS = (1, 4)


def _vectorizer(vocabulary=None, min_df: int = 1):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(analyzer="char_wb", ngram_range=NGRAMS, lowercase=True,
                           vocabulary=vocabulary, min_df=min_df, dtype=np.float32)


@dataclass
class CharNgramClassifier:
    languages: list[str]
    vocabulary: list[str]
    log_prob: np.ndarray  # (languages, n-grams)
    log_prior: np.ndarray  # (languages,)

    def scores(self, texts: list[str]) -> np.ndarray:
        counts = _vectorizer(self.vocabulary).transform(texts)  # (texts, n-grams), sparse
        return np.asarray(counts @ self.log_prob.T) + self.log_prior  # (texts, languages)

    def predict(self, texts: list[str]) -> list[str]:
        if not texts:
            return []
        return [self.languages[i] for i in self.scores(texts).argmax(1)]

    def save(self, path: str | Path) -> None:
        path = Path(path)
        write_json(path.with_suffix(".json"), {"kind": "char-ngram-naive-bayes",
                                               "ngram_range": list(NGRAMS),
                                               "languages": self.languages,
                                               "vocabulary": self.vocabulary})
        with atomic_path(path.with_suffix(".npz"), suffix=".npz") as tmp:
            np.savez(tmp, log_prob=self.log_prob.astype(np.float32), log_prior=self.log_prior)

    @classmethod
    def load(cls, path: str | Path) -> "CharNgramClassifier":
        path = Path(path)
        meta = read_json(path.with_suffix(".json"))
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as arrays:
            return cls(meta["languages"], meta["vocabulary"], arrays["log_prob"],
                       arrays["log_prior"])


def train_classifier(sentences: dict[str, list[str]], alpha: float = 0.05,
                     min_df: int = 2) -> CharNgramClassifier:
    """Naive Bayes over char n-grams from {language: sentences}; uniform prior."""
    from sklearn.naive_bayes import MultinomialNB

    languages = sorted(sentences)
    texts = [s for lang in languages for s in sentences[lang]]
    labels = [i for i, lang in enumerate(languages) for _ in sentences[lang]]
    vec = _vectorizer(min_df=min_df)
    counts = vec.fit_transform(texts)
    nb = MultinomialNB(alpha=alpha, fit_prior=False).fit(counts, labels)
    return CharNgramClassifier(languages, vec.get_feature_names_out().tolist(),
                               nb.feature_log_prob_.astype(np.float32),
                               nb.class_log_prior_.astype(np.float32))


def sib_sentences(language: str, split: str) -> list[str]:
    """SIB-200 sentences of one language variant, via the pinned data."""
    return list(flores_sentences(language, split).values())


def default_classifier(languages: list[str] | None = None) -> CharNgramClassifier:
    """The SIB-200-trained classifier for `languages`, trained once and cached."""
    import hashlib

    languages = sorted(languages or DEFAULT_LANGUAGES)
    key = hashlib.sha256(" ".join(languages).encode()).hexdigest()[:10]
    path = model_cache() / "langid" / f"char-ngram-nb-{key}"
    if path.with_suffix(".npz").is_file() and path.with_suffix(".json").is_file():
        return CharNgramClassifier.load(path)
    clf = train_classifier({lang: sib_sentences(lang, "train") for lang in languages})
    clf.save(path)
    return clf


def sib_accuracy(clf: CharNgramClassifier, words: int | None = None) -> dict[str, float]:
    """Accuracy per language on SIB-200 test sentences (cut to `words` words when set)."""
    out = {}
    for lang in clf.languages:
        texts = sib_sentences(lang, "test")
        if words:
            texts = [" ".join(t.split()[:words]) for t in texts]
        out[lang] = float(np.mean([p == lang for p in clf.predict(texts)]))
    return out


def cld3_language(text: str) -> str | None:
    """CLD3's guess as one of our codes' ISO 639-3 part ("hau"), or its own code when it is
    outside CLD3_CODES; None when gcld3 is not installed."""
    try:
        import gcld3
    except ImportError:
        return None
    guess = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000).FindLanguage(
        text=text).language
    back = {v: k for k, v in CLD3_CODES.items()}
    return back.get(guess, guess)


def _repeats(question: str) -> bool:
    """Degenerate output: some pair of consecutive words occurs twice ("bese bese bese")."""
    words = question.casefold().split()
    pairs = list(zip(words, words[1:]))
    return len(set(pairs)) < len(pairs)


def _cld3_agreement(questions: list[str], lang: str) -> float | None:
    """CLD3's second opinion: the share it identifies as `lang`; None where CLD3 does not
    know the language or gcld3 is not installed."""
    code = lang.split("_")[0]
    if code not in CLD3_CODES or not questions or cld3_language("test") is None:
        return None
    return float(np.mean([cld3_language(q) == code for q in questions]))


def query_quality(rows: list[dict], classifier: CharNgramClassifier,
                  examples: int = 5) -> dict[str, dict]:
    """Per language of generated rows {lang, question, doc_id}: how many rows, share whose
    identified language is the requested one (`langid_agreement`; rows in languages the
    classifier lacks are skipped), share that are empty or repeat an earlier question of
    the same passage and language (`duplicate_rate`), share with a pair of consecutive words
    that occurs twice (`repetition_rate`: degenerate output), CLD3's agreement where it knows the
    language (`cld3_agreement`), words per question, top identified languages, and the first
    `examples` questions."""
    by_lang: dict[str, list[dict]] = {}
    for r in rows:
        by_lang.setdefault(r["lang"], []).append(r)
    out = {}
    for lang, group in sorted(by_lang.items()):
        questions = [r["question"] for r in group]
        predicted = classifier.predict(questions)
        seen, dups = set(), 0
        for r in group:
            key = (r.get("doc_id"), r["question"].strip().casefold())
            dups += (not key[1]) or key in seen
            seen.add(key)
        lengths = [len(q.split()) for q in questions]
        out[lang] = {
            "rows": len(group),
            "langid_agreement": (float(np.mean([p == lang for p in predicted]))
                                 if lang in classifier.languages else None),
            "cld3_agreement": _cld3_agreement(questions, lang),
            "identified_as": dict(Counter(predicted).most_common(3)),
            "duplicate_rate": dups / len(group),
            "repetition_rate": float(np.mean([_repeats(q) for q in questions])),
            "mean_words": statistics.fmean(lengths), "median_words": statistics.median(lengths),
            "examples": questions[:examples],
        }
    return out

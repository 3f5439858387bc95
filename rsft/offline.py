"""Is the Hugging Face Hub reachable? Decided in seconds, before the first Hub call, so that offline runs fail fast.

Offline, Hugging Face's libraries retry every Hub call for ~50 s before failing. `require()` decides first: the
Hub is unreachable when HF_HUB_OFFLINE=1, or when its endpoint (HF_ENDPOINT, else https://huggingface.co, through
the proxy the environment names) does not answer an HTTP HEAD request within 2 s. Then a repository in the local
cache is used from there at once (the libraries are switched to offline mode), and one that is not is a one-line
error naming the download. Used by train.py (the model and tokenizer), the dataset reader, the evaluation worker,
the judges and `python -m rsft.hub push`.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from rsft.errors import NotLocal, UserError

PROBE_TIMEOUT_S = 2.0  # one HEAD request to the Hub: well inside the 5 s a user should wait to hear it is offline
DEFAULT_ENDPOINT = "https://huggingface.co"


def _true(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


@functools.lru_cache(maxsize=None)
def _probe(url: str) -> str | None:
    """None when the endpoint answers an HTTP HEAD request of its front page within PROBE_TIMEOUT_S, else why not.
    HTTP, not a bare TCP connect: some networks accept every connection and answer 404. urllib goes through
    the proxy the environment names; the request runs in a thread, so a name lookup with no DNS server (which
    no socket timeout covers) cannot hold the caller longer."""
    outcome: list = []

    def head():
        try:
            urllib.request.urlopen(urllib.request.Request(url + "/", method="HEAD"), timeout=PROBE_TIMEOUT_S).close()
            outcome.append(None)
        except urllib.error.HTTPError as e:  # the Hub answers its front page; 401: one that wants a token
            outcome.append(None if e.code == 401 else f"answered HTTP {e.code} to HEAD /")
        except (OSError, ValueError) as e:  # URLError, timeouts, TLS failures; ValueError: a malformed HF_ENDPOINT
            why = str(getattr(e, "reason", None) or e) or type(e).__name__
            outcome.append(f"no answer within {PROBE_TIMEOUT_S:g} s ({why})")

    worker = threading.Thread(target=head, daemon=True)
    worker.start()
    worker.join(PROBE_TIMEOUT_S + 0.5)
    if outcome and outcome[0] is None:
        return None
    return f"{url}: {outcome[0] if outcome else f'no answer within {PROBE_TIMEOUT_S:g} s'}"


def _go_offline() -> None:
    """Make transformers, datasets and huggingface_hub read the cache only, without their retry loops; the
    environment carries it to the evaluation and judge workers."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        import datasets

        datasets.config.HF_HUB_OFFLINE = True


_switched_offline: str | None = None  # why this process turned offline mode on itself (a failed probe)


def offline_reason() -> str | None:
    """Why the Hub cannot be reached now, or None when it can. Unreachable switches the libraries to offline mode."""
    global _switched_offline
    if _switched_offline:
        return _switched_offline
    if _true(os.environ.get("HF_HUB_OFFLINE")) or _true(os.environ.get("TRANSFORMERS_OFFLINE")):
        reason = "HF_HUB_OFFLINE=1"
    else:
        reason = _switched_offline = _probe(endpoint())
    if reason:
        _go_offline()
    return reason


def is_cached(repo_id: str, revision: str | None = None, repo_type: str = "model") -> bool:
    """Whether a snapshot of this repository (at this revision, else its main branch) is in the local Hub cache."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, revision=revision, repo_type=repo_type, local_files_only=True)
        return True
    except Exception:  # huggingface_hub's "not in the cache" errors differ by what is missing
        return False


def require(repo_id: str, revision: str | None = None, repo_type: str = "model", what: str = "model",
            local: str = "a local folder") -> None:
    """Before the first Hub call for `repo_id`: return when it is a local path, the Hub is reachable or the
    repository is cached (offline mode then on); else fail at once, naming the download and the local option.
    Used for training's model and tokenizer; the evaluation worker and the judges call it for theirs."""
    if Path(repo_id).expanduser().exists():
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise UserError(f"{what} '{repo_id}': no such local folder, and not a Hub id") from None
    reason = offline_reason()
    if reason is None or is_cached(repo_id, revision, repo_type):
        return
    from huggingface_hub import constants

    cmd = f"hf download {repo_id}" + (f" --repo-type {repo_type}" if repo_type != "model" else "") + (
        f" --revision {revision}" if revision else "")
    raise NotLocal(f"{what} '{repo_id}' is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and "
                    f"the Hub cannot be reached ({reason}): run `{cmd}` where it can be reached (and copy the cache "
                    f"here), or pass {local}")

"""Server settings: one pydantic-settings class, read from WAVENET_* environment variables.

List values (WAVENET_MODELS, WAVENET_API_KEYS, ...) accept JSON (`["a", "b"]`) or a
comma-separated string (`a,b`). `models` entries are checkpoint files or folders of
`*.safetensors`; the default is the `models/` folder bundled next to the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from wavenet_core.generation.precision import PRECISIONS

BUNDLED_MODELS = Path(__file__).resolve().parent.parent / "models"


def _split_list(value):
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAVENET_", extra="ignore")

    models: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [BUNDLED_MODELS],
        description="checkpoint files or folders of *.safetensors")
    device: str = Field("auto", description="auto (cuda when available), cpu, cuda, cuda:N")
    backend: Literal["auto", "torch", "cpu", "cuda-graph", "triton"] = "auto"
    precision: Literal[PRECISIONS] = Field(
        "auto", description="weight format: cpu fp32/bf16/int8/bf16a/int8a (auto: the "
                            "fastest this CPU "
                            "supports natively within the model's recorded NLL budget), "
                            "triton fp32/fp16 (auto: fp16 on CUDA); other backends fp32")
    max_streams: int = Field(16, ge=1, le=1024, description="live slots per model")
    max_waiting: int = Field(64, ge=0, le=100_000, description="queued requests per model")
    chunk_size: int = Field(4096, ge=16, le=1 << 20,
                            description="most samples one engine step makes per stream")
    first_chunk_size: int = Field(512, ge=1, le=1 << 20,
                                  description="most samples of a step that opens new streams")
    min_chunk_size: int = Field(16, ge=1, le=1 << 20)
    chunk_target_ms: float = Field(100.0, gt=0, description="wall time aimed at per engine step")
    first_chunk_target_ms: float = Field(10.0, gt=0,
                                         description="wall time aimed at for a stream's first step")
    max_streams_per_client: int = Field(
        0, ge=0, description="streams (live and waiting) one client, an API key or else an "
                             "address, may hold per model; 0: half of max_streams")
    prepare_workers: int = Field(2, ge=1, le=256, description="threads that decode audio, "
                                 "analyse mels and render text for admitted requests")
    max_seconds: float = Field(30.0, gt=0, description="longest audio one request may ask for")
    max_speech_seconds: float = Field(
        300.0, gt=0, description="longest audio of a text spoken sentence by sentence "
                                 "(/v1/audio/speech's 4,096 characters, Wyoming)")
    max_input_chars: int = Field(
        4096, ge=1, description="most characters of text one request may speak "
                                "(/v1/audio/speech `input`, a WebSocket text stream in all, "
                                "Wyoming); more is a 413 (WS: close 1009)")
    text_piece_chars: int = Field(1000, ge=1, description="most characters in one text "
                                  "piece of a WebSocket text stream")
    text_idle_seconds: float = Field(30.0, gt=0, description="a WebSocket text stream with "
                                     "no message for this long, before its end, ends with an "
                                     "error (text_timeout)")
    max_body_bytes: int = Field(8 << 20, ge=1024, description="request body / WS message cap")
    stream_buffer_chunks: int = Field(32, ge=2, le=4096,
                                      description="chunks buffered per stream before it pauses")
    mel_gather_hops: float = Field(
        1.0, ge=0, description="while every stream that could step is a mel streamed in at "
        "its pace and others wait for their next frame, hold the step this many hops of "
        "audio time (one hop: 16 ms at 16 kHz) to gather them into one batch; 0: never")
    mel_idle_seconds: float = Field(10.0, gt=0, description="a streamed mel with no frame for "
                                    "this long ends with an error (mel_timeout)")
    mel_lag_seconds: float = Field(5.0, gt=0, description="a streamed mel more than this "
                                   "many seconds behind real time ends (mel_too_slow)")
    slow_client_seconds: float = Field(30.0, gt=0,
                                       description="a paused stream is dropped after this long")
    api_key: SecretStr | None = None
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="more keys, one per client: each key gets its own "
                                          "share of the slots and the queue")
    api_key_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="keys as sha256:<hex> digests (how Ray replicas get "
                                          "them: the keys never appear in a runtime_env)")
    auth_health: bool = Field(False, description="also require the key for health and metrics")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="pages on other origins that may call the API and "
                                          "read its responses (CORS); allowed origins too")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="browser origins, besides the server's own page, "
                                          "whose pages may use /v1 and the WebSocket; * for any")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    warmup_samples: int = Field(256, ge=0, description="samples generated per model at startup")
    torch_threads: int = Field(0, ge=0, description="torch.set_num_threads; 0 keeps the default")
    wyoming: str | None = Field(None, description="also serve the Wyoming protocol (Home "
                                "Assistant) here, e.g. tcp://0.0.0.0:10200 (server/wyoming.py)")

    @field_validator("models", "cors_origins", "allowed_origins", "api_keys", "api_key_hashes",
                     mode="before")
    @classmethod
    def _lists(cls, value):
        return _split_list(value)

    @field_validator("api_key_hashes")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        for item in value:
            hexa = item.removeprefix("sha256:")
            if not item.startswith("sha256:") or len(hexa) != 64 or \
                    any(c not in "0123456789abcdef" for c in hexa.lower()):
                raise ValueError("each API key hash is sha256:<64 hex digits>")
        return [item.lower() for item in value]

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value):
        """WAVENET_API_KEY= (empty, as docker compose passes an unset variable) means no auth."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return None if value is None or not str(value).strip() else str(value).strip()

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.lower() if isinstance(value, str) else value

    def client_cap(self) -> int:
        """Streams one client may hold per model (`max_streams_per_client`, 0: auto)."""
        return self.max_streams_per_client or max(1, self.max_streams // 2)

    def checkpoint_paths(self) -> list[Path]:
        """Every checkpoint named by `models`: files as given, folders' *.safetensors sorted.

        A path that does not exist is returned as is, so loading reports it as a failure.
        """
        found: list[Path] = []
        for entry in self.models:
            entry = Path(entry).expanduser()
            if entry.is_dir():
                found.extend(sorted(entry.glob("*.safetensors")))
            else:
                found.append(entry)
        unique: dict[Path, None] = {}
        for path in found:
            unique.setdefault(path, None)
        return list(unique)

import pyarrow as pa
import pytest

from infra import storage
from infra.schemas import QUARANTINE_SCHEMA
from infra.validate import to_table, validate_table


def _roundtrip(base: str):
    uri = storage.join(base, "nested/dir/hello.txt")
    storage.write_bytes(uri, b"hello amuse")
    assert storage.exists(uri)
    assert storage.read_bytes(uri) == b"hello amuse"
    with storage.open_uri(storage.join(base, "nested/dir/b.bin"), "wb") as f:
        f.write(b"\x00" * 10)
    assert storage.list_files(storage.join(base, "nested"), ".txt") == [uri]
    assert len(storage.list_files(storage.join(base, "nested"))) == 2

    table = to_table(
        [{"quarantine_id": f"q{i}", "source": "ami", "uri": "m.rttm", "line": i, "stage": "adapter",
          "reason": "bad line"} for i in range(5)],
        QUARANTINE_SCHEMA,
    )
    puri = storage.join(base, "tables/quarantine.parquet")
    storage.write_parquet(table, puri)
    back = storage.read_parquet(puri)
    assert back.num_rows == 5
    assert back.column("line").to_pylist() == list(range(5))
    assert validate_table(back, QUARANTINE_SCHEMA) == 5
    fp1 = storage.fingerprint(uri)
    storage.write_bytes(uri, b"hello amuse!")
    assert storage.fingerprint(uri) != fp1


def test_local_roundtrip(tmp_path):
    _roundtrip(str(tmp_path))


def test_s3_roundtrip_on_loopback_server(s3_bucket):
    _roundtrip(s3_bucket)
    # The pyarrow filesystem and the fsspec one see the same objects.
    fs, path = storage.arrow_filesystem(storage.join(s3_bucket, "tables/quarantine.parquet"))
    assert fs.get_file_info(path).size > 0


def test_s3_missing_object_is_reported(s3_bucket):
    assert not storage.exists(storage.join(s3_bucket, "nope.parquet"))
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(s3_bucket, "nope.bin"))
    assert storage.list_files(storage.join(s3_bucket, "empty")) == []


def test_storage_config_env_for_workers(s3_bucket, s3_server):
    env = storage.StorageConfig().env()
    assert env["AWS_ENDPOINT_URL"] == s3_server
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert isinstance(pa.table({"a": [1]}), pa.Table)

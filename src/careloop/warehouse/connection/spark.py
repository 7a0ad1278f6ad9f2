"""The process's one local Spark session, started on first use and stopped at exit."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from careloop.core.errors import ConfigurationError
from careloop.warehouse.connection.engine_warnings import quiet_engine_warnings

SPARK_CONF: Mapping[str, str] = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.sql.sources.default": "parquet",
}
"""Settings of the local Spark session: small memory, few shuffle partitions, no web UI."""

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""

_spark_lock = threading.Lock()
_spark: dict[str, Any] = {}


def spark_session(master: str = "local[*]") -> Any:
    """The process's Spark session in local mode, started on first use.

    Starting Spark takes seconds, so every Spark :class:`Warehouse` of a process
    shares one session (each gets its own child session for its current
    database). The session keeps its catalog in memory and its tables as parquet
    files in a temporary directory that is deleted when the process exits: a
    ``spark://local`` warehouse lives as long as the process, and is for
    computing on data loaded into it (tests, measures checked across engines),
    not for keeping data.

    Raises:
        ConfigurationError: pyspark or Java is missing, Spark does not start, or
            a session with another master already runs in this process.
    """
    try:
        from pyspark.sql import SparkSession  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigurationError(
            "A spark:// warehouse needs Apache Spark, which is not installed. Install the "
            "extra: pip install 'careloop[spark]' (and a Java runtime, e.g. Debian's "
            "default-jre-headless)."
        ) from None
    with _spark_lock:
        session = _spark.get("session")
        if session is not None:
            if _spark["master"] != master:
                raise ConfigurationError(
                    f"This process already runs Spark with master {_spark['master']}; "
                    f"it cannot also run {master} (one Spark session per process)."
                )
            return session
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise ConfigurationError(
                "A spark:// warehouse needs a Java runtime (java on PATH or JAVA_HOME), "
                "e.g. Debian's default-jre-headless."
            )
        workdir = Path(tempfile.mkdtemp(prefix="careloop-spark-"))
        (workdir / "log4j2.properties").write_text(_LOG4J2, encoding="utf-8")
        builder = SparkSession.builder.master(master).appName("careloop-warehouse")
        for key, value in SPARK_CONF.items():
            builder = builder.config(key, value)
        java_options = f"-Dlog4j2.configurationFile=file:{workdir / 'log4j2.properties'}"
        builder = (
            builder.config("spark.sql.warehouse.dir", str(workdir / "warehouse"))
            .config("spark.local.dir", str(workdir / "tmp"))
            .config("spark.driver.extraJavaOptions", java_options)
        )
        # Bind to the loopback interface (and skip Spark's warning about the host name).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            with quiet_engine_warnings():
                session = builder.getOrCreate()
        except Exception as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            raise ConfigurationError(f"Spark did not start in local mode: {exc}") from exc
        session.sparkContext.setLogLevel("ERROR")
        _spark.update(session=session, master=master, workdir=workdir)
        atexit.register(_stop_spark)
        return session


def _stop_spark() -> None:
    with _spark_lock:
        session = _spark.pop("session", None)
        workdir = _spark.pop("workdir", None)
        _spark.clear()
    if session is not None:
        with contextlib.suppress(Exception), quiet_engine_warnings():
            session.stop()
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)

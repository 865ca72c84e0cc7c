"""Ships documents to Loghound's Elasticsearch API with the official
`elasticsearch` Python client, as an application would, and prints what
the client reported as one JSON object.

usage: ship.py BASE_URL TOKEN COUNT
"""

import json
import sys
import time

from elasticsearch import Elasticsearch, helpers


def document(n, now_ms):
    return {
        "@timestamp": time.strftime(
            "%Y-%m-%dT%H:%M:%S", time.gmtime((now_ms - n) / 1000)
        ) + ".%03dZ" % ((now_ms - n) % 1000),
        "message": "es-doc %d checkout step %d" % (n, n % 7),
        "host": {"name": "web-%d" % (n % 3)},
        "service": {"name": "checkout"},
        "log": {"level": "error" if n % 10 == 0 else "info"},
        "http": {"response": {"status_code": 500 + n % 4 if n % 5 == 0 else 200}},
        "user": {"id": n},
    }


def main():
    base_url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = Elasticsearch(
        base_url + "/es",
        basic_auth=("loghound", token),
        request_timeout=60,
        max_retries=5,
        retry_on_status=(429, 502, 503, 504),
    )
    info = client.info()
    now_ms = int(time.time() * 1000)
    actions = (
        {
            "_op_type": "create" if n % 2 else "index",
            "_index": "app-logs",
            "_source": document(n, now_ms),
        }
        for n in range(count)
    )
    stored, errors = helpers.bulk(client, actions, chunk_size=500, raise_on_error=False)
    mixed = client.bulk(
        operations=[
            {"create": {"_index": "app-logs", "_id": "marker-1"}},
            {"message": "es-refresh-marker", "host.name": "api-1"},
            {"delete": {"_index": "app-logs", "_id": "marker-1"}},
            {"update": {"_index": "app-logs", "_id": "marker-1"}},
            {"doc": {"message": "changed"}},
        ],
        refresh="wait_for",
    )
    print(
        json.dumps(
            {
                "version": info["version"]["number"],
                "stored": stored,
                "errors": errors,
                "mixed_errors": mixed["errors"],
                "mixed": [
                    {
                        "action": next(iter(item)),
                        "status": next(iter(item.values()))["status"],
                        "id": next(iter(item.values())).get("_id"),
                        "error": next(iter(item.values())).get("error", {}).get("type"),
                    }
                    for item in mixed["items"]
                ],
            }
        )
    )


if __name__ == "__main__":
    main()

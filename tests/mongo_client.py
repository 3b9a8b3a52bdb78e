"""A pymongo (3.11, Debian's python3-pymongo) client for the Mongo tests: runs one scenario against
mongodb://127.0.0.1:<port> and prints what it saw as one JSON line.

    /usr/bin/python3 tests/mongo_client.py <port> [db]

Scenario: insert_many of 7 users (_id 1..7), a find with $comment {"callingFunction":"getUser"} on _id 3, a
find with batch_size 2 over the 7 (3 getMores), count_documents, an aggregate ($match + $count), a duplicate
_id insert (11000), an unknown command (59), update_one and delete_many.
"""
import json
import sys

import pymongo
from pymongo.errors import DuplicateKeyError, OperationFailure

port = int(sys.argv[1])
db_name = sys.argv[2] if len(sys.argv) > 2 else "pyapp"
client = pymongo.MongoClient("127.0.0.1", port, directConnection=True, serverSelectionTimeoutMS=3000,
                             connectTimeoutMS=3000, socketTimeoutMS=10000)
out = {}
try:
    db = client[db_name]
    users = db.users
    out["inserted"] = len(users.insert_many(
        [{"_id": i, "name": "user%d" % i, "even": i % 2 == 0} for i in range(1, 8)]).inserted_ids)
    getuser = json.dumps({"callingFunction": "getUser"}, separators=(",", ":"))
    found = list(users.find({"_id": 3}).comment(getuser))
    out["found"] = [d["name"] for d in found]
    out["batched"] = [d["_id"] for d in users.find({}).batch_size(2)]
    out["count_even"] = users.count_documents({"even": True})
    agg = list(users.aggregate([{"$match": {"even": False}}, {"$count": "n"}]))
    out["aggregate"] = agg[0]["n"] if agg else 0
    try:
        users.insert_one({"_id": 1, "name": "again"})
        out["duplicate"] = None
    except DuplicateKeyError as e:
        out["duplicate"] = e.code
    try:
        db.command("nosuchcommand")
        out["unknown"] = None
    except OperationFailure as e:
        out["unknown"] = e.code
    out["updated"] = users.update_one({"_id": 2}, {"$set": {"name": "two"}}).modified_count
    out["deleted"] = users.delete_many({"even": False}).deleted_count
    out["remaining"] = sorted(d["_id"] for d in users.find({}, {"_id": 1}))
    out["server_version"] = client.server_info()["version"]
finally:
    client.close()
print(json.dumps(out))

"""Helpers for the S3 lab that only wait or display (the graded calls are boto3).

``age_objects`` lets time pass for lifecycle rules: locally the virtual clock is fast-forwarded
day by day (S3 runs lifecycle once a day, at midnight UTC); on AWS nothing can speed this up, so
it only says when to come back.
"""

from __future__ import annotations

from labkit.errors import LabkitError

# US East (N. Virginia) list prices, USD per GB-month (check the S3 pricing page for today's).
PRICE_PER_GB_MONTH = {"STANDARD": 0.023, "STANDARD_IA": 0.0125, "ONEZONE_IA": 0.01,
                      "INTELLIGENT_TIERING": 0.023, "GLACIER_IR": 0.004, "GLACIER": 0.0036,
                      "DEEP_ARCHIVE": 0.00099}
# Billing rules that matter for small objects: IA classes bill at least 128 KB per object;
# Glacier Flexible Retrieval and Deep Archive add 40 KB of index per object (32 KB at their own
# rate, 8 KB at the STANDARD rate).
MIN_BILLABLE_BYTES = {"STANDARD_IA": 128 * 1024, "ONEZONE_IA": 128 * 1024, "GLACIER_IR": 128 * 1024}
ARCHIVE_OVERHEAD = {"GLACIER": (32 * 1024, 8 * 1024), "DEEP_ARCHIVE": (32 * 1024, 8 * 1024)}


def monthly_cost(size_bytes: int, storage_class: str) -> float:
    """List-price storage cost of one object for one month (USD), with the small-object rules."""
    gb = 1024 ** 3
    billed = max(size_bytes, MIN_BILLABLE_BYTES.get(storage_class, 0))
    cost = billed / gb * PRICE_PER_GB_MONTH[storage_class]
    if storage_class in ARCHIVE_OVERHEAD:
        own, standard = ARCHIVE_OVERHEAD[storage_class]
        cost += own / gb * PRICE_PER_GB_MONTH[storage_class] + standard / gb * PRICE_PER_GB_MONTH["STANDARD"]
    return cost


def age_objects(aws, days: int) -> bool:
    """Let ``days`` days pass for lifecycle rules. Local: fast-forward one day at a time (with a
    progress bar) and return True. AWS: print when to look again and return False."""
    if days < 0:
        raise LabkitError("time only moves forward")
    if not aws.is_local:
        print(f"AWS mode: lifecycle rules act once a day; come back in {days} day(s) and list the "
              "bucket again to see the storage classes change.")
        return False
    from tqdm.auto import tqdm

    for _ in tqdm(range(days), desc="ageing objects", unit="day"):
        aws.fast_forward(days=1)
    print("virtual time is now", aws.now().strftime("%Y-%m-%d %H:%M UTC"))
    return True

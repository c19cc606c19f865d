{#-
    Customers who agreed to share their data for research: the latest record of each e-mail, when it has
    a research-consent date (the rules are customer_classified's; the records not kept are in
    customer_rejected with the reason).
-#}
select
    email,
    customer_name,
    phone,
    birth_day,
    serial_number,
    registration_date_ms,
    last_update_date_ms,
    share_with_research_as_of_date_ms,
    share_with_public_as_of_date_ms,
    share_with_friends_as_of_date_ms,
    registered_at,
    last_updated_at,
    research_consent_at,
    ingested_at,
    source_file,
    consent_policy
from {{ ref('customer_classified') }}
where rejection_reason is null

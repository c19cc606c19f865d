{#-
    Customers who agreed to share their data for research: the latest record of each e-mail (the latest
    last_update_date_ms, then the later ingest, source file and batch), kept when that record has a
    research-consent date. A customer whose latest record has no consent (never gave it, or withdrew it in
    an update) is not here, whatever earlier records said.
-#}
with

customer_records as (

    select * from {{ ref('stg_bronze__customer') }}

),

ranked_records as (

    select
        *,
        row_number() over (
            partition by email
            order by last_update_date_ms desc nulls last, ingested_at desc, source_file desc, batch_id desc
        ) as record_rank
    from customer_records
    where email is not null

),

final as (

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
        {{ consent_policy_column() }}
    from ranked_records
    where record_rank = 1 and share_with_research_as_of_date_ms is not null

)

select * from final

{#-
    Every bronze customer record with the trusted zone's verdict: rejection_reason is null for the record
    customer_trusted keeps, else why it is not kept. Of an e-mail's records the latest wins (the latest
    last_update_date_ms, then the later ingest, source file and batch), and is kept when it has a
    research-consent date: a customer whose latest record has no consent (never gave it, or withdrew it in
    an update) is not trusted, whatever earlier records said. customer_trusted and customer_rejected are
    the two halves of this table, so that every bronze record is in exactly one of them.
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
        ) as record_rank,
        -- identical records (every field the customer sent): the later ingest is the record, the rest copies
        row_number() over (
            partition by
                email, customer_name, phone, birth_day, serial_number, registration_date_ms,
                last_update_date_ms, share_with_research_as_of_date_ms, share_with_public_as_of_date_ms,
                share_with_friends_as_of_date_ms
            order by ingested_at desc, source_file desc, batch_id desc
        ) as copy_rank
    from customer_records

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
        batch_id,
        event_date,
        case
            when email is null then 'missing_email'
            when copy_rank > 1 then 'duplicate_copy'
            when record_rank > 1 then 'superseded_by_later_record'
            when share_with_research_as_of_date_ms is null then 'no_research_consent'
        end as rejection_reason,
        {{ consent_policy_column() }}
    from ranked_records

)

select * from final

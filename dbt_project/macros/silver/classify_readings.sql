{#
    The silver rules, shared by silver_readings and silver_rejected_readings so that the two can never
    disagree: every bronze row gets exactly one outcome, accepted or one rejection reason.

    First, values are converted to the contract's units where a device type's firmware reports others
    (seed unit_conversions: value * multiply_by + then_add, matched on device type and the major firmware
    version); validation and silver see converted values only.

    Emits CTEs (each followed by a comma) ending in `classified_readings`, which has every column of
    stg_bronze__readings plus:
      registered_site_id   the registry's site for the device
      rejection_reason     null when accepted, else one code (first that applies, in this order):
                             unknown_device        device_id is not in the registry
                             device_type_mismatch  device_type differs from the registry's
                             future_event          event_at > reference + future_tolerance_s, where the
                                                   reference is ingested_at (or var reference_time if earlier)
                             before_install        event_at is before the device's installed_at
                             unexpected_metric     a metric its device type does not report has a value
                             out_of_range          a metric is outside [valid_min, valid_max] of its
                                                   device type (metric_limits seed), NaN or infinite
                             duplicate             a valid reading whose key (device_id, event_at, seq)
                                                   has a preferred valid copy
      rejected_metric      the metric concerned, for unexpected_metric and out_of_range
      unit_conversion      the unit the firmware reported in, when a value was converted, else null
      copy_number          rank of the row among all bronze copies of its key: valid copies first, then
                           latest ingested_at, then source_file and batch_id descending, then values
                           (so the choice is deterministic). The accepted copy has copy_number 1.

    Arguments are the names of CTEs defined before the call.
#}
{% macro classify_readings(bronze_readings, device_registry, metric_limits, unit_conversions) -%}

{%- set metrics = var('metrics') -%}
{%- set readings = 'converted_readings' -%}
{%- set other_columns = [
    'device_id', 'device_type', 'site_id', 'event_at', 'event_date', 'seq', 'battery_pct', 'firmware',
    'rescued_data', 'ingested_at', 'source_file', 'batch_id', 'schema_version',
] -%}

conversions_by_firmware as (

    select
        device_type,
        firmware_major,
        max(reported_unit) as reported_unit,
        {%- for metric in metrics %}
        max(case when metric = '{{ metric }}' then multiply_by end) as {{ metric }}__multiply_by,
        max(case when metric = '{{ metric }}' then then_add end) as {{ metric }}__then_add{{ ',' if not loop.last }}
        {%- endfor %}

    from {{ unit_conversions }}
    group by device_type, firmware_major

),

converted_readings as (

    select
        {%- for column in other_columns %}
        {{ bronze_readings }}.{{ column }},
        {%- endfor %}
        {%- for metric in metrics %}
        {{ bronze_readings }}.{{ metric }} * coalesce(conversions_by_firmware.{{ metric }}__multiply_by, 1.0)
        + coalesce(conversions_by_firmware.{{ metric }}__then_add, 0.0) as {{ metric }},
        {%- endfor %}
        conversions_by_firmware.reported_unit as unit_conversion

    from {{ bronze_readings }}
    left join conversions_by_firmware
        on
            {{ bronze_readings }}.device_type = conversions_by_firmware.device_type
            and {{ dbt.split_part(bronze_readings ~ '.firmware', "'.'", 1) }} = conversions_by_firmware.firmware_major

),

limits_by_device_type as (

    select
        device_type,
        {%- for metric in metrics %}
        max(case when metric = '{{ metric }}' then valid_min end) as {{ metric }}__valid_min,
        max(case when metric = '{{ metric }}' then valid_max end) as {{ metric }}__valid_max,
        max(case when metric = '{{ metric }}' then 1 else 0 end) as {{ metric }}__is_reported{{ ',' if not loop.last }}
        {%- endfor %}

    from {{ metric_limits }}
    group by device_type

),

checked_readings as (

    select
        {{ readings }}.*,
        {{ device_registry }}.device_type as registered_device_type,
        {{ device_registry }}.site_id as registered_site_id,
        {{ device_registry }}.installed_at,
        case
            {%- for metric in metrics %}
            when {{ readings }}.{{ metric }} is not null
                and coalesce(limits_by_device_type.{{ metric }}__is_reported, 0) = 0
                then '{{ metric }}'
            {%- endfor %}
        end as unexpected_metric,
        case
            {%- for metric in metrics %}
            when {{ readings }}.{{ metric }} < limits_by_device_type.{{ metric }}__valid_min
                or {{ readings }}.{{ metric }} > limits_by_device_type.{{ metric }}__valid_max
                or {{ is_not_finite(readings ~ '.' ~ metric) }}
                then '{{ metric }}'
            {%- endfor %}
        end as out_of_range_metric,
        {{ readings }}.event_at > {{ dbt.dateadd('second', var('future_tolerance_s'), reading_reference_time(readings ~ '.ingested_at')) }}
            as is_future_event

    from {{ readings }}
    left join {{ device_registry }}
        on {{ readings }}.device_id = {{ device_registry }}.device_id
    left join limits_by_device_type
        on {{ device_registry }}.device_type = limits_by_device_type.device_type

),

validated_readings as (

    select
        *,
        case
            when registered_device_type is null then 'unknown_device'
            when device_type <> registered_device_type then 'device_type_mismatch'
            when is_future_event then 'future_event'
            when event_at < installed_at then 'before_install'
            when unexpected_metric is not null then 'unexpected_metric'
            when out_of_range_metric is not null then 'out_of_range'
        end as validation_failure

    from checked_readings

),

-- Most keys have one copy: only keys with several are ranked (a window over all rows would sort them all).
keys_with_copies as (

    select
        device_id,
        event_at,
        seq
    from validated_readings
    group by device_id, event_at, seq
    having count(*) > 1

),

ranked_readings as (

    select
        validated_readings.*,
        cast(1 as bigint) as copy_number
    from validated_readings
    where not exists (
        select 1
        from keys_with_copies
        where
            keys_with_copies.device_id = validated_readings.device_id
            and keys_with_copies.event_at = validated_readings.event_at
            and keys_with_copies.seq = validated_readings.seq
    )

    union all

    select
        validated_readings.*,
        row_number() over (
            partition by validated_readings.device_id, validated_readings.event_at, validated_readings.seq
            order by
                case when validated_readings.validation_failure is null then 0 else 1 end,
                validated_readings.ingested_at desc,
                validated_readings.source_file desc,
                validated_readings.batch_id desc,
                {%- for metric in metrics %}
                validated_readings.{{ metric }} desc nulls last,
                {%- endfor %}
                validated_readings.battery_pct desc nulls last,
                validated_readings.firmware desc nulls last
        ) as copy_number
    from validated_readings
    inner join keys_with_copies
        on
            validated_readings.device_id = keys_with_copies.device_id
            and validated_readings.event_at = keys_with_copies.event_at
            and validated_readings.seq = keys_with_copies.seq

),

classified_readings as (

    select
        *,
        coalesce(
            validation_failure,
            case when copy_number > 1 then 'duplicate' end
        ) as rejection_reason,
        case validation_failure
            when 'unexpected_metric' then unexpected_metric
            when 'out_of_range' then out_of_range_metric
        end as rejected_metric

    from ranked_readings

),

{%- endmacro %}


{#
    The time a reading's event_at is compared with for `future_event`: when bronze ingested it, or
    var('reference_time') when that is set and earlier (tests replaying old data pin it).
#}
{% macro reading_reference_time(ingested_at) -%}
    {%- if var('reference_time', none) -%}
        least({{ ingested_at }}, {{ timestamp_literal(var('reference_time')) }})
    {%- else -%}
        {{ ingested_at }}
    {%- endif -%}
{%- endmacro %}

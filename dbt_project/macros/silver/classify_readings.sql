{#
    The silver rules, shared by silver_readings and silver_rejected_readings so that the two can never
    disagree: every bronze row gets exactly one outcome, accepted or one rejection reason.

    First, values are converted to the contract's units where a device type's firmware reports others
    (seed unit_conversions: value * multiply_by + then_add, matched on device type and the major firmware
    version); validation and silver see converted values only.

    Emits CTEs (each followed by a comma) ending in `classified_readings`, which has every column of
    stg_bronze__readings plus:
      registered_site_id   the catalogue's site for the device
      rejection_reason     null when accepted, else one code (first that applies, in this order):
                             unknown_device        device_id has no catalogue row in force at event_at
                             device_type_mismatch  device_type differs from the catalogue's
                             future_event          event_at > reference + future_tolerance_s, where the
                                                   reference is ingested_at (or var reference_time if earlier)
                             before_install        event_at is before the device's installed_at
                             after_retirement      event_at is at or after the device's retired_at
                             unexpected_metric     a metric its device type does not report has a value
                             out_of_range          a metric is outside [valid_min, valid_max] (the
                                                   device's override, else its type's), NaN or infinite
                             duplicate             a valid reading whose key (device_id, event_at, seq)
                                                   has a preferred valid copy
      rejected_metric      the metric concerned, for unexpected_metric and out_of_range
      unit_conversion      the unit the firmware reported in, when a value was converted, else null
      copy_number          rank of the row among all bronze copies of its key: valid copies first, then
                           latest ingested_at, then source_file and batch_id descending, then values
                           (so the choice is deterministic). The accepted copy has copy_number 1.

    Every catalogue row is taken from the version in force at the reading's event time: the devices'
    [valid_from, valid_to) intervals, and, for the metrics, the periods between two changes of any metric
    of a device type (or of a device's overrides), each with every metric's limits in force then.

    Arguments are the names of CTEs defined before the call: bronze readings, catalogue_devices,
    catalogue_metrics, unit_conversions.
#}
{% macro classify_readings(bronze_readings, devices, metrics_catalogue, unit_conversions) -%}

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

{{ limits_in_force(metrics_catalogue, 'device_type', 'device_id is null', 'limits_by_device_type') }}

{{ limits_in_force(metrics_catalogue, 'device_id', 'device_id is not null', 'limits_by_device') }}

checked_readings as (

    select
        {{ readings }}.*,
        {{ devices }}.device_type as registered_device_type,
        {{ devices }}.site_id as registered_site_id,
        {{ devices }}.installed_at,
        {{ devices }}.retired_at,
        case
            {%- for metric in metrics %}
            when {{ readings }}.{{ metric }} is not null
                and coalesce(type_limits.{{ metric }}__is_reported, 0) = 0
                and coalesce(device_limits.{{ metric }}__is_reported, 0) = 0
                then '{{ metric }}'
            {%- endfor %}
        end as unexpected_metric,
        case
            {%- for metric in metrics %}
            when {{ readings }}.{{ metric }}
                < coalesce(device_limits.{{ metric }}__valid_min, type_limits.{{ metric }}__valid_min)
                or {{ readings }}.{{ metric }}
                > coalesce(device_limits.{{ metric }}__valid_max, type_limits.{{ metric }}__valid_max)
                or {{ is_not_finite(readings ~ '.' ~ metric) }}
                then '{{ metric }}'
            {%- endfor %}
        end as out_of_range_metric,
        {{ readings }}.event_at > {{ dbt.dateadd('second', var('future_tolerance_s'), reading_reference_time(readings ~ '.ingested_at')) }}
            as is_future_event

    from {{ readings }}
    left join {{ devices }}
        on
            {{ readings }}.device_id = {{ devices }}.device_id
            and {{ readings }}.event_at >= {{ devices }}.valid_from
            and {{ readings }}.event_at < {{ devices }}.valid_to
    left join limits_by_device_type as type_limits
        on
            {{ devices }}.device_type = type_limits.device_type
            and {{ readings }}.event_at >= type_limits.valid_from
            and {{ readings }}.event_at < type_limits.valid_to
    left join limits_by_device as device_limits
        on
            {{ readings }}.device_id = device_limits.device_id
            and {{ readings }}.event_at >= device_limits.valid_from
            and {{ readings }}.event_at < device_limits.valid_to

),

validated_readings as (

    select
        *,
        case
            when registered_device_type is null then 'unknown_device'
            when device_type <> registered_device_type then 'device_type_mismatch'
            when is_future_event then 'future_event'
            when event_at < installed_at then 'before_install'
            when event_at >= retired_at then 'after_retirement'
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
    The limits of every metric in force per period, for one scope: `device_type` (the type's own rows,
    `where device_id is null`) or `device_id` (per-device overrides). A period runs from one change of any
    metric row of the scope to the next, so each reading joins exactly one period row per scope. Emits the
    CTE `name` (followed by a comma) with the scope column, valid_from, valid_to and per metric
    `<metric>__valid_min`, `<metric>__valid_max`, `<metric>__is_reported`.
#}
{% macro limits_in_force(metrics_catalogue, scope, condition, name) -%}

{%- set metrics = var('metrics') -%}

{{ name }}__changes as (

    select distinct
        {{ scope }},
        valid_from
    from {{ metrics_catalogue }}
    where {{ condition }}

),

{{ name }}__periods as (

    select
        {{ scope }},
        valid_from,
        coalesce(
            lead(valid_from) over (partition by {{ scope }} order by valid_from),
            {{ catalogue_end_of_time() }}
        ) as valid_to
    from {{ name }}__changes

),

{{ name }} as (

    select
        periods.{{ scope }},
        periods.valid_from,
        periods.valid_to,
        {%- for metric in metrics %}
        max(case when metric_rows.metric = '{{ metric }}' then metric_rows.valid_min end) as {{ metric }}__valid_min,
        max(case when metric_rows.metric = '{{ metric }}' then metric_rows.valid_max end) as {{ metric }}__valid_max,
        max(case when metric_rows.metric = '{{ metric }}' then 1 else 0 end) as {{ metric }}__is_reported{{ ',' if not loop.last }}
        {%- endfor %}

    from {{ name }}__periods as periods
    inner join {{ metrics_catalogue }} as metric_rows
        on
            periods.{{ scope }} = metric_rows.{{ scope }}
            and {{ condition | replace('device_id', 'metric_rows.device_id') }}
            and periods.valid_from >= metric_rows.valid_from
            and periods.valid_from < metric_rows.valid_to
    group by periods.{{ scope }}, periods.valid_from, periods.valid_to

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

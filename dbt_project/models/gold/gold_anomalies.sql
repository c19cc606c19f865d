{{ config(**replaceable_units_config(unique_key=['device_id', 'event_date'], row_id='anomaly_id')) }}

{#-
    Shape of the computation, for speed: readings stay wide (one row per reading, a column per metric)
    through a single window pass that brings each reading's predecessors alongside; the z-score baseline
    comes from ten-minute bucket sums (a GROUP BY, no sliding window). Only flagged readings are turned
    into long (metric, kind) rows, and grouped into windows.
-#}
{%- set backfill = backfill_range() if is_incremental() else none %}
{%- set metrics = var('metrics') %}
{%- set bucket_minutes = var('anomaly_zscore_window_minutes') %}
{%- set flat_readings = var('anomaly_flatline_min_readings') %}
{%- set flat_minimum_s = var('anomaly_flatline_min_minutes') * 60.0 %}
{%- set kinds = ['threshold_breach', 'zscore_outlier', 'rate_of_change', 'flatline'] %}
{%- set device_series = '(partition by device_id order by event_at, seq)' %}

with

silver_readings as (

    select * from {{ ref('silver_readings') }}

),

rejected_readings as (

    select * from {{ ref('silver_rejected_readings') }}

),

metric_limits as (

    select * from {{ ref('metric_limits') }}

),

device_types as (

    select * from {{ ref('device_types') }}

),

limits_by_device_type as (

    select
        device_types.device_type,
        device_types.reporting_interval_s,
        {%- for metric in metrics %}
        {%- for limit in ['valid_min', 'valid_max', 'alert_min', 'alert_max', 'max_jump'] %}
        max(case when metric_limits.metric = '{{ metric }}' then metric_limits.{{ limit }} end)
            as {{ metric }}__{{ limit }},
        {%- endfor %}
        {%- endfor %}
        device_types.silence_after_s
    from device_types
    left join metric_limits
        on device_types.device_type = metric_limits.device_type
    group by device_types.device_type, device_types.reporting_interval_s, device_types.silence_after_s

),

{% if backfill -%}

-- A backfill: the windows of every device-day of the range, from the readings of the range and of one day
-- on each side (lags, gaps and z-score neighbourhoods reach across midnight), plus each device's last
-- reading before that (the start of a data_gap ending in the range).
previous_readings as (

    select
        silver_readings.device_id,
        max(silver_readings.event_at) as event_at
    from silver_readings
    where silver_readings.event_date < cast({{ dbt.dateadd('day', -1, "cast('" ~ backfill['from'] ~ "' as date)") }} as date)
    group by silver_readings.device_id

),

readings as (

    select silver_readings.*
    from silver_readings
    where {{ in_backfill_range('silver_readings.event_date', backfill, days_before=1, days_after=1) }}

    union all

    select silver_readings.*
    from silver_readings
    inner join previous_readings
        on
            silver_readings.device_id = previous_readings.device_id
            and silver_readings.event_at = previous_readings.event_at

),

rejected_to_scan as (

    select rejected_readings.*
    from rejected_readings
    where
        {{ in_backfill_range('rejected_readings.event_date', backfill) }}
        and rejected_readings.rejection_reason = 'out_of_range'

),

{%- elif is_incremental() -%}

{{ gold_rebuild_window() }}

-- The late-data rule. A reading ingested since the last build can change the windows of its own day, of
-- the days its z-score neighbourhood reaches and of the day of the device's next reading (the gap and
-- jump that end there): those device-days are rebuilt (see changed_device_days), from the device's
-- readings since the day before the earliest of them plus its last reading before that.
new_readings as (

    select
        silver_readings.device_id,
        silver_readings.event_date
    from silver_readings
    cross join rebuild_window
    where
        silver_readings.event_date >= rebuild_window.floor_date
        and silver_readings.ingested_at >= rebuild_window.since_ingested_at

    union all

    select
        rejected_readings.device_id,
        rejected_readings.event_date
    from rejected_readings
    cross join rebuild_window
    where
        rejected_readings.rejection_reason = 'out_of_range'
        and rejected_readings.event_date >= rebuild_window.floor_date
        and rejected_readings.ingested_at >= rebuild_window.since_ingested_at

),

context_starts as (

    select
        device_id,
        cast({{ dbt.dateadd('day', -1, 'min(event_date)') }} as date) as context_date
    from new_readings
    group by device_id

),

previous_readings as (

    select
        silver_readings.device_id,
        max(silver_readings.event_at) as event_at
    from silver_readings
    inner join context_starts
        on silver_readings.device_id = context_starts.device_id
    cross join rebuild_window
    where
        silver_readings.event_date < context_starts.context_date
        and silver_readings.event_date >= rebuild_window.floor_date
    group by silver_readings.device_id

),

readings as (

    select silver_readings.*
    from silver_readings
    inner join context_starts
        on silver_readings.device_id = context_starts.device_id
    where silver_readings.event_date >= context_starts.context_date

    union all

    select silver_readings.*
    from silver_readings
    inner join previous_readings
        on
            silver_readings.device_id = previous_readings.device_id
            and silver_readings.event_at = previous_readings.event_at

),

rejected_to_scan as (

    select rejected_readings.*
    from rejected_readings
    inner join context_starts
        on rejected_readings.device_id = context_starts.device_id
    where
        rejected_readings.event_date >= context_starts.context_date
        and rejected_readings.rejection_reason = 'out_of_range'

),

{%- else -%}

readings as (

    select * from silver_readings

),

rejected_to_scan as (

    select * from rejected_readings
    where rejection_reason = 'out_of_range'

),

{%- endif %}

-- zscore_outlier baseline: per device, sums of each metric over ten-minute buckets; a reading's
-- neighbourhood is its bucket and the two next to it, the reading itself left out.
bucketed_readings as (

    select
        *,
        cast(floor({{ epoch_ms('event_at') }} / {{ bucket_minutes * 60000 }}.0) as bigint) as bucket_number
    from readings

),

bucket_sums as (

    select
        device_id,
        bucket_number,
        {%- for metric in metrics %}
        count({{ metric }}) as {{ metric }}__n,
        sum({{ metric }}) as {{ metric }}__sum,
        sum({{ metric }} * {{ metric }}) as {{ metric }}__sum_sq,
        {%- endfor %}
        count(*) as reading_count
    from bucketed_readings
    group by device_id, bucket_number

),

neighbourhood_sums as (

    select
        device_id,
        bucket_number,
        {%- for metric in metrics %}
        sum({{ metric }}__n) as {{ metric }}__n,
        sum({{ metric }}__sum) as {{ metric }}__sum,
        sum({{ metric }}__sum_sq) as {{ metric }}__sum_sq,
        {%- endfor %}
        sum(reading_count) as reading_count
    from (
        {%- for shift in [-1, 0, 1] %}
        select
            device_id,
            bucket_number + {{ shift }} as bucket_number,
            {%- for metric in metrics %}
            {{ metric }}__n,
            {{ metric }}__sum,
            {{ metric }}__sum_sq,
            {%- endfor %}
            reading_count
        from bucket_sums
        {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    ) as shifted
    group by device_id, bucket_number

),

neighbourhood_readings as (

    select
        bucketed_readings.*,
        limits_by_device_type.reporting_interval_s,
        {%- for metric in metrics %}
        limits_by_device_type.{{ metric }}__alert_min,
        limits_by_device_type.{{ metric }}__alert_max,
        limits_by_device_type.{{ metric }}__valid_min,
        limits_by_device_type.{{ metric }}__valid_max,
        limits_by_device_type.{{ metric }}__max_jump,
        neighbourhood_sums.{{ metric }}__n - case when bucketed_readings.{{ metric }} is null then 0 else 1 end
            as {{ metric }}__others_n,
        neighbourhood_sums.{{ metric }}__sum - coalesce(bucketed_readings.{{ metric }}, 0)
            as {{ metric }}__others_sum,
        neighbourhood_sums.{{ metric }}__sum_sq
        - coalesce(bucketed_readings.{{ metric }} * bucketed_readings.{{ metric }}, 0) as {{ metric }}__others_sum_sq,
        {%- endfor %}
        limits_by_device_type.silence_after_s
    from bucketed_readings
    inner join limits_by_device_type
        on bucketed_readings.device_type = limits_by_device_type.device_type
    inner join neighbourhood_sums
        on
            bucketed_readings.device_id = neighbourhood_sums.device_id
            and bucketed_readings.bucket_number = neighbourhood_sums.bucket_number

),

scored_readings as (

    select
        *,
        {%- for metric in metrics %}
        case
            when {{ metric }}__others_n >= 5
                then {{ zscore(metric, metric ~ '__others_n', metric ~ '__others_sum', metric ~ '__others_sum_sq',
                               '0.001 * (' ~ metric ~ '__valid_max - ' ~ metric ~ '__valid_min)') }}
        end as {{ metric }}__z,
        {%- endfor %}
        bucket_number as neighbourhood_bucket_number
    from neighbourhood_readings

),

-- The one window pass: each reading with its predecessors (and its successor's time).
sequenced_readings as (

    select
        *,
        lag(event_at) over {{ device_series }} as previous_event_at,
        lag(event_date) over {{ device_series }} as previous_event_date,
        {%- for back in range(2, flat_readings + 1) %}
        lag(event_at, {{ back }}) over {{ device_series }} as event_at__{{ back }},
        lag(event_date, {{ back }}) over {{ device_series }} as event_date__{{ back }},
        {%- endfor %}
        {%- for metric in metrics %}
        lag({{ metric }}__z) over {{ device_series }} as {{ metric }}__z__1,
        {%- for back in range(1, flat_readings + 1) %}
        lag({{ metric }}, {{ back }}) over {{ device_series }} as {{ metric }}__{{ back }},
        {%- endfor %}
        {%- endfor %}
        lead(event_at) over {{ device_series }} as next_event_at
    from scored_readings

),

-- Per metric and kind: the point's score, whether it is flagged, whether it starts a new window (the
-- previous reading was not flagged, or was on another day).
flagged_readings as (

    select
        device_id,
        device_type,
        site_id,
        event_date,
        event_at,
        seq,
        ingested_at,
        previous_event_at,
        next_event_at,
        silence_after_s,
        {{ seconds_between('previous_event_at', 'event_at') }} / silence_after_s as gap_score,
        coalesce(previous_event_date <> event_date, true) as is_new_day,
        {%- if is_incremental() and not backfill %}
        ingested_at >= (select rebuild_window.since_ingested_at from rebuild_window) as is_new,
        {%- else %}
        false as is_new,
        {%- endif %}
        {%- for metric in metrics %}
        {%- set m = metric %}
        {{ m }},
        -- threshold_breach
        case
            when {{ m }} > {{ m }}__alert_max
                then ({{ m }} - {{ m }}__alert_max) / nullif({{ m }}__valid_max - {{ m }}__alert_max, 0)
            when {{ m }} < {{ m }}__alert_min
                then ({{ m }}__alert_min - {{ m }}) / nullif({{ m }}__alert_min - {{ m }}__valid_min, 0)
        end as {{ m }}__threshold_breach__score,
        coalesce({{ m }}__1 > {{ m }}__alert_max or {{ m }}__1 < {{ m }}__alert_min, false)
            as {{ m }}__threshold_breach__previous,
        -- zscore_outlier
        {{ m }}__z as {{ m }}__zscore_outlier__score,
        coalesce({{ m }}__z__1 >= {{ var('anomaly_zscore_threshold') }}, false) as {{ m }}__zscore_outlier__previous,
        -- rate_of_change
        abs({{ m }} - {{ m }}__1) / (
            {{ m }}__max_jump
            * greatest(1.0, {{ seconds_between('previous_event_at', 'event_at') }} / reporting_interval_s)
        ) as {{ m }}__rate_of_change__score,
        coalesce(
            abs({{ m }}__1 - {{ m }}__2) / (
                {{ m }}__max_jump
                * greatest(1.0, {{ seconds_between('event_at__2', 'previous_event_at') }} / reporting_interval_s)
            ) > 1,
            false
        ) as {{ m }}__rate_of_change__previous,
        -- flatline: this reading ends a run of the same value, within one day, of the minimum length
        -- (the minimum duration is checked on the whole window, below)
        case
            when
                {%- for back in range(1, flat_readings) %}
                {{ m }}__{{ back }} = {{ m }} and
                {%- endfor %}
                event_date__{{ flat_readings - 1 }} = event_date
                then 1.0
        end as {{ m }}__flatline__score,
        coalesce(
            {%- for back in range(2, flat_readings + 1) %}
            {{ m }}__{{ back }} = {{ m }}__1 and
            {%- endfor %}
            event_date__{{ flat_readings }} = previous_event_date,
            false
        ) as {{ m }}__flatline__previous,
        {%- endfor %}
        event_at__{{ flat_readings - 1 }} as flat_started_at
    from sequenced_readings

),

-- Readings that matter from here on (few): flagged for some metric and kind, ending a silence, or new.
notable_readings as (

    select *
    from flagged_readings
    where
        gap_score > 1
        or is_new
        {%- for metric in metrics %}
        {%- for kind in kinds %}
        or {{ flag_condition(metric ~ '__' ~ kind ~ '__score', kind) }}
        {%- endfor %}
        {%- endfor %}

),

metric_kinds as (

    select
        metric_kind_pairs.metric,
        metric_kind_pairs.anomaly_kind
    from (
        values
        {%- for metric in metrics %}
        {%- set last_metric = loop.last %}
        {%- for kind in kinds %}
        ('{{ metric }}', '{{ kind }}'){{ ',' if not (loop.last and last_metric) }}
        {%- endfor %}
        {%- endfor %}
    ) as metric_kind_pairs (metric, anomaly_kind)

),

-- Long form of the flagged points: one row per (reading, metric, kind) that is flagged.
flagged_points as (

    select *
    from (
        select
            notable_readings.device_id,
            notable_readings.device_type,
            notable_readings.site_id,
            notable_readings.event_date,
            notable_readings.event_at,
            notable_readings.seq,
            notable_readings.ingested_at,
            cast(metric_kinds.metric as varchar) as metric,
            cast(metric_kinds.anomaly_kind as varchar) as anomaly_kind,
            case metric_kinds.metric
                {%- for metric in metrics %}
                when '{{ metric }}' then notable_readings.{{ metric }}
                {%- endfor %}
            end as metric_value,
            case
                {%- for metric in metrics %}
                {%- for kind in kinds %}
                when metric_kinds.metric = '{{ metric }}' and metric_kinds.anomaly_kind = '{{ kind }}'
                    then notable_readings.{{ metric }}__{{ kind }}__score
                {%- endfor %}
                {%- endfor %}
            end as point_score,
            case
                when metric_kinds.anomaly_kind = 'flatline' then notable_readings.flat_started_at
                else notable_readings.event_at
            end as point_started_at,
            notable_readings.is_new_day or not case
                {%- for metric in metrics %}
                {%- for kind in kinds %}
                when metric_kinds.metric = '{{ metric }}' and metric_kinds.anomaly_kind = '{{ kind }}'
                    then notable_readings.{{ metric }}__{{ kind }}__previous
                {%- endfor %}
                {%- endfor %}
            end as is_window_start
        from notable_readings
        cross join metric_kinds
    ) as points
    where
        false
        {%- for kind in kinds %}
        or (anomaly_kind = '{{ kind }}' and {{ flag_condition('point_score', kind) }})
        {%- endfor %}

),

point_windows as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        anomaly_kind,
        event_date,
        min(point_started_at) as started_at,
        max(event_at) as ended_at,
        max_by(metric_value, point_score) as peak_value,
        case
            when anomaly_kind = 'flatline'
                then {{ seconds_between('min(point_started_at)', 'max(event_at)') }} / {{ flat_minimum_s }}
            else max(point_score)
        end as score,
        count(*) + case when anomaly_kind = 'flatline' then {{ flat_readings - 1 }} else 0 end as reading_count,
        max(ingested_at) as last_ingested_at
    from (
        select
            *,
            sum(case when is_window_start then 1 else 0 end) over (
                partition by device_id, metric, anomaly_kind
                order by event_at, seq
                rows between unbounded preceding and current row
            ) as window_number
        from flagged_points
    ) as numbered
    group by device_id, device_type, site_id, metric, anomaly_kind, event_date, window_number
    having
        anomaly_kind <> 'flatline'
        or {{ seconds_between('min(point_started_at)', 'max(event_at)') }} >= {{ flat_minimum_s }}

),

-- data_gap: the device sent nothing for longer than its type's silence_after_s. One window per silence,
-- from the last reading before it to the first after it, owned by the day of the latter.
data_gaps as (

    select
        device_id,
        device_type,
        site_id,
        cast(null as varchar) as metric,
        cast('data_gap' as varchar) as anomaly_kind,
        event_date,
        previous_event_at as started_at,
        event_at as ended_at,
        cast(null as double) as peak_value,
        gap_score as score,
        cast(0 as bigint) as reading_count,
        ingested_at as last_ingested_at
    from notable_readings
    where gap_score > 1

),

-- out_of_range: readings silver rejected as impossible values, readings no more than a few reporting
-- intervals apart forming one window. Score: how far outside, as a share of the valid range.
out_of_range_points as (

    select
        rejected_to_scan.device_id,
        rejected_to_scan.device_type,
        rejected_to_scan.site_id,
        rejected_to_scan.event_date,
        rejected_to_scan.event_at,
        rejected_to_scan.seq,
        rejected_to_scan.ingested_at,
        rejected_to_scan.rejected_metric as metric,
        case rejected_to_scan.rejected_metric
            {%- for metric in metrics %}
            when '{{ metric }}' then rejected_to_scan.{{ metric }}
            {%- endfor %}
        end as metric_value,
        metric_limits.valid_min,
        metric_limits.valid_max,
        device_types.reporting_interval_s
    from rejected_to_scan
    inner join metric_limits
        on
            rejected_to_scan.device_type = metric_limits.device_type
            and rejected_to_scan.rejected_metric = metric_limits.metric
    inner join device_types
        on rejected_to_scan.device_type = device_types.device_type
    where rejected_to_scan.copy_number = 1

),

out_of_range_scored as (

    select
        *,
        case
            when {{ is_not_finite('metric_value') }} then 1.0
            when metric_value > valid_max then (metric_value - valid_max) / (valid_max - valid_min)
            else (valid_min - metric_value) / (valid_max - valid_min)
        end as point_score,
        coalesce(
            {{ seconds_between(
                'lag(event_at) over (partition by device_id, metric, event_date order by event_at, seq)',
                'event_at'
            ) }} <= {{ var('anomaly_out_of_range_gap_intervals') }} * reporting_interval_s,
            false
        ) as is_continued
    from out_of_range_points

),

out_of_range_windows as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        cast('out_of_range' as varchar) as anomaly_kind,
        event_date,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        max_by(metric_value, point_score) as peak_value,
        max(point_score) as score,
        count(*) as reading_count,
        max(ingested_at) as last_ingested_at
    from (
        select
            *,
            sum(case when is_continued then 0 else 1 end) over (
                partition by device_id, metric, event_date
                order by event_at, seq
                rows between unbounded preceding and current row
            ) as window_number
        from out_of_range_scored
    ) as numbered
    group by device_id, device_type, site_id, metric, event_date, window_number

),

all_windows as (

    select
        *,
        case anomaly_kind
            when 'threshold_breach' then {{ severity('score', 0.1, 0.5) }}
            when 'zscore_outlier' then {{ severity('score', 0, 10) }}
            when 'rate_of_change' then {{ severity('score', 1, 3) }}
            else {{ severity('score', 1, 15) }}
        end as severity
    from point_windows
    union all
    select *, {{ severity('score', 1, 6) }} as severity from data_gaps
    union all
    select *, {{ severity('score', 0, 0.25) }} as severity from out_of_range_windows

),

{% if backfill -%}

changed_device_days as (

    select
        readings.device_id,
        readings.event_date
    from readings
    where {{ in_backfill_range('readings.event_date', backfill) }}

    union

    select
        rejected_to_scan.device_id,
        rejected_to_scan.event_date
    from rejected_to_scan

),

windows_to_keep as (

    select all_windows.*
    from all_windows
    inner join changed_device_days
        on
            all_windows.device_id = changed_device_days.device_id
            and all_windows.event_date = changed_device_days.event_date

),

{%- elif is_incremental() -%}

changed_device_days as (

    select distinct
        device_id,
        event_date
    from (
        {%- for offset in [0, -2 * bucket_minutes, 2 * bucket_minutes] %}
        select
            device_id,
            cast({{ dbt.dateadd('minute', offset, 'event_at') }} as date) as event_date
        from notable_readings
        where is_new
        union all
        {%- endfor %}
        select
            device_id,
            cast(next_event_at as date) as event_date
        from notable_readings
        where is_new and next_event_at is not null
        union all
        select
            device_id,
            event_date
        from new_readings
    ) as changed
    where event_date >= (select rebuild_window.floor_date from rebuild_window)

),

windows_to_keep as (

    select all_windows.*
    from all_windows
    inner join changed_device_days
        on
            all_windows.device_id = changed_device_days.device_id
            and all_windows.event_date = changed_device_days.event_date

),

{%- else -%}

windows_to_keep as (

    select * from all_windows

),

{%- endif %}

final as (

    select
        {{ anomaly_id('device_id', 'metric', 'anomaly_kind', 'started_at') }} as anomaly_id,
        device_id,
        device_type,
        site_id,
        metric,
        anomaly_kind,
        started_at,
        ended_at,
        peak_value,
        score,
        severity,
        reading_count,
        last_ingested_at,
        event_date
    from windows_to_keep

    {%- if is_incremental() and emits_scope_rows() %}

    -- Scope rows (anomaly_id null): every rebuilt device-day, also those left without any anomaly.
    union all

    select
        cast(null as varchar) as anomaly_id,
        device_id,
        cast(null as varchar) as device_type,
        cast(null as varchar) as site_id,
        cast(null as varchar) as metric,
        cast(null as varchar) as anomaly_kind,
        cast(null as timestamp) as started_at,
        cast(null as timestamp) as ended_at,
        cast(null as double) as peak_value,
        cast(null as double) as score,
        cast(null as varchar) as severity,
        cast(null as bigint) as reading_count,
        cast(null as timestamp) as last_ingested_at,
        event_date
    from changed_device_days
    {%- endif %}

)

select * from final

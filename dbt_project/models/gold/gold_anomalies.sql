{{ config(**replaceable_units_config(unique_key=['device_id', 'event_date'], row_id='anomaly_id')) }}

{%- set window_minutes = var('anomaly_zscore_window_minutes') %}
{%- set neighbourhood -%}
(
            partition by device_id, metric
            order by event_at
            range between interval '{{ window_minutes }}' minute preceding
            and interval '{{ window_minutes }}' minute following
        )
{%- endset %}

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

{% if is_incremental() -%}

{{ gold_rebuild_window() }}

-- The late-data rule. A new reading can change the windows of its own day, of the days its z-score
-- window reaches into, and of the day of the device's next reading (the gap and the jump that end
-- there). Those device-days are rebuilt from the device's readings since the day before the earliest
-- of them, plus its last reading before that (for the first gap and jump).
new_readings as (

    select
        silver_readings.device_id,
        silver_readings.event_at,
        silver_readings.seq
    from silver_readings
    cross join rebuild_window
    where
        silver_readings.event_date >= rebuild_window.floor_date
        and silver_readings.ingested_at >= rebuild_window.since_ingested_at

),

new_rejected_readings as (

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
        min(context_date) as context_date
    from (
        select
            device_id,
            cast({{ dbt.dateadd('day', -1, 'event_at') }} as date) as context_date
        from new_readings
        union all
        select
            device_id,
            event_date as context_date
        from new_rejected_readings
    ) as starts
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

next_readings as (

    select
        device_id,
        event_at,
        seq,
        lead(event_at) over (partition by device_id order by event_at, seq) as next_event_at
    from readings

),

changed_device_days as (

    select distinct
        device_id,
        event_date
    from (
        select
            new_readings.device_id,
            cast(new_readings.event_at as date) as event_date
        from new_readings
        union all
        select
            new_readings.device_id,
            cast({{ dbt.dateadd('minute', -1 * window_minutes, 'new_readings.event_at') }} as date) as event_date
        from new_readings
        union all
        select
            new_readings.device_id,
            cast({{ dbt.dateadd('minute', window_minutes, 'new_readings.event_at') }} as date) as event_date
        from new_readings
        union all
        select
            new_readings.device_id,
            cast(next_readings.next_event_at as date) as event_date
        from new_readings
        inner join next_readings
            on
                new_readings.device_id = next_readings.device_id
                and new_readings.event_at = next_readings.event_at
                and new_readings.seq = next_readings.seq
        where next_readings.next_event_at is not null
        union all
        select
            device_id,
            event_date
        from new_rejected_readings
    ) as changed
    where {{ changed_units('true') }}

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

metric_values as (

    {{ metric_values('readings', [
        'device_id', 'device_type', 'site_id', 'event_date', 'event_at', 'seq', 'ingested_at',
    ]) }}

),

metric_points as (

    select
        metric_values.*,
        metric_limits.valid_min,
        metric_limits.valid_max,
        metric_limits.alert_min,
        metric_limits.alert_max,
        metric_limits.max_jump,
        device_types.reporting_interval_s
    from metric_values
    inner join metric_limits
        on
            metric_values.device_type = metric_limits.device_type
            and metric_values.metric = metric_limits.metric
    inner join device_types
        on metric_values.device_type = device_types.device_type

),

-- threshold_breach: beyond the alert limits. Score: how far past the alert limit, as a share of the way
-- from the alert limit to the valid limit.
threshold_flagged as (

    select
        *,
        coalesce(point_score >= 0, false) as is_flagged
    from (
        select
            *,
            case
                when metric_value > alert_max
                    then (metric_value - alert_max) / nullif(valid_max - alert_max, 0)
                when metric_value < alert_min
                    then (alert_min - metric_value) / nullif(alert_min - valid_min, 0)
            end as point_score
        from metric_points
    ) as scored

),

{{ anomaly_windows('threshold_flagged', 'threshold_breach', 'threshold_breaches') }}

-- zscore_outlier: far from the device's own readings around it (window on both sides, the reading left
-- out), in standard deviations; the deviation is floored at 0.1 % of the valid range so that a quiet or
-- stuck signal does not make every small step an outlier.
neighbourhood_sums as (

    select
        *,
        count(*) over {{ neighbourhood }} - 1 as neighbour_count,
        sum(metric_value) over {{ neighbourhood }} - metric_value as neighbour_sum,
        sum(metric_value * metric_value) over {{ neighbourhood }} - metric_value * metric_value
            as neighbour_sum_sq
    from metric_points

),

neighbourhood_stats as (

    select
        *,
        neighbour_sum / neighbour_count as neighbour_mean,
        sqrt(greatest(
            (neighbour_sum_sq - neighbour_sum * neighbour_sum / neighbour_count) / (neighbour_count - 1),
            0.0
        )) as neighbour_stddev
    from neighbourhood_sums
    where neighbour_count >= 5

),

zscore_flagged as (

    select
        *,
        point_score >= {{ var('anomaly_zscore_threshold') }} as is_flagged
    from (
        select
            *,
            abs(metric_value - neighbour_mean)
            / greatest(neighbour_stddev, 0.001 * (valid_max - valid_min)) as point_score
        from neighbourhood_stats
    ) as scored

),

{{ anomaly_windows('zscore_flagged', 'zscore_outlier', 'zscore_outliers') }}

-- flatline: the very same value again and again. Score: the run's duration over the minimum duration.
value_changes as (

    select
        *,
        case
            when metric_value = lag(metric_value) over (
                partition by device_id, metric, event_date order by event_at, seq
            ) then 0
            else 1
        end as is_new_value
    from metric_points

),

value_runs as (

    select
        *,
        sum(is_new_value) over (
            partition by device_id, metric, event_date
            order by event_at, seq
            rows between unbounded preceding and current row
        ) as run_number
    from value_changes

),

run_lengths as (

    select
        *,
        count(*) over (partition by device_id, metric, event_date, run_number) as run_readings,
        {{ seconds_between(
            'min(event_at) over (partition by device_id, metric, event_date, run_number)',
            'max(event_at) over (partition by device_id, metric, event_date, run_number)'
        ) }} as run_seconds
    from value_runs

),

flatline_flagged as (

    select
        *,
        run_seconds / ({{ var('anomaly_flatline_min_minutes') }} * 60.0) as point_score,
        run_readings >= {{ var('anomaly_flatline_min_readings') }}
        and run_seconds >= {{ var('anomaly_flatline_min_minutes') }} * 60 as is_flagged
    from run_lengths

),

{{ anomaly_windows('flatline_flagged', 'flatline', 'flatlines') }}

-- rate_of_change: a jump from the previous reading larger than the seed's max_jump (per reporting
-- interval elapsed). Score: the jump over the allowed jump.
jumps as (

    select
        *,
        abs(metric_value - lag(metric_value) over (partition by device_id, metric order by event_at, seq))
            as jump,
        {{ seconds_between(
            'lag(event_at) over (partition by device_id, metric order by event_at, seq)', 'event_at'
        ) }} as seconds_since_previous
    from metric_points

),

rate_flagged as (

    select
        *,
        coalesce(point_score > 1, false) as is_flagged
    from (
        select
            *,
            jump / (max_jump * greatest(1.0, seconds_since_previous / reporting_interval_s)) as point_score
        from jumps
    ) as scored

),

{{ anomaly_windows('rate_flagged', 'rate_of_change', 'rate_changes') }}

-- data_gap: the device sent nothing for longer than its type's silence_after_s. One window per silence,
-- from the last reading before it to the first after it, owned by the day of the latter.
device_silences as (

    select
        readings.device_id,
        readings.device_type,
        readings.site_id,
        readings.event_date,
        readings.event_at,
        readings.ingested_at,
        lag(readings.event_at) over (partition by readings.device_id order by readings.event_at, readings.seq)
            as previous_event_at,
        device_types.silence_after_s
    from readings
    inner join device_types
        on readings.device_type = device_types.device_type

),

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
        {{ seconds_between('previous_event_at', 'event_at') }} / silence_after_s as score,
        cast(0 as bigint) as reading_count,
        ingested_at as last_ingested_at
    from device_silences
    where {{ seconds_between('previous_event_at', 'event_at') }} > silence_after_s

),

-- out_of_range: readings silver rejected as impossible values, grouped into windows of readings no more
-- than a few reporting intervals apart. Score: how far outside, as a share of the valid range.
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
            {%- for metric in var('metrics') %}
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

    select *, {{ severity('score', 0.1, 0.5) }} as severity from threshold_breaches
    union all
    select *, {{ severity('score', 0, 10) }} as severity from zscore_outliers
    union all
    select *, {{ severity('score', 1, 15) }} as severity from flatlines
    union all
    select *, {{ severity('score', 1, 3) }} as severity from rate_changes
    union all
    select *, {{ severity('score', 1, 6) }} as severity from data_gaps
    union all
    select *, {{ severity('score', 0, 0.25) }} as severity from out_of_range_windows

),

{% if is_incremental() -%}

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

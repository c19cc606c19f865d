{{ config(**replaceable_units_config(unique_key=['device_id', 'event_date'], row_id='anomaly_id')) }}

{#-
    What an anomaly is, in one place. Which device-days are rebuilt and from which readings is the rebuild
    scope (macros/gold/anomaly_scope.sql); every CTE here reads only `readings`, `rejected_to_scan` and
    `rebuild_device_days` from it.

    Learned from each device's own history (the trailing var anomaly_baseline_hours, in buckets of
    var anomaly_baseline_bucket_minutes, the current bucket left out), silent during a warm-up: the
    short-term ones (neighbourhood z-score, flatline, data_gap) until the history holds
    var anomaly_zscore_min_readings readings, the long-term ones (range, variance) until it holds
    var anomaly_warmup_readings readings over var anomaly_warmup_hours (a day shows a daily cycle):
    - data_gap: a silence well beyond the device's own cadence;
    - zscore_outlier / level_shift: values outside the range of the trailing history by more than
      var anomaly_range_margin of its width, or far from their ten-minute neighbourhood (fast senders only),
      as episodes: short ones are outliers, longer ones level shifts (drifts leave the range this way too);
    - variance_change: a bucket whose typical step between readings is a multiple (or a fraction) of the
      usual one;
    - flatline: a value repeated much longer than the usual repeats of the trailing history (and than a
      minimum).
    From limits someone set (seed metric_limits): threshold_breach, rate_of_change, out_of_range.
-#}
{%- set metrics = var('metrics') %}
{%- set bucket_minutes = var('anomaly_baseline_bucket_minutes') %}
{%- set history_buckets = (var('anomaly_baseline_hours') * 60 / bucket_minutes) | int %}
{%- set warmup = var('anomaly_warmup_readings') %}
{%- set warmup_buckets = (var('anomaly_warmup_hours') * 60 / bucket_minutes) | int %}
{%- set short_warmup = var('anomaly_zscore_min_readings') %}
{%- set margin = var('anomaly_range_margin') %}
{%- set z_threshold = var('anomaly_zscore_threshold') %}
{%- set merge_s = var('anomaly_episode_merge_minutes') * 60 %}
{%- set flat_readings = var('anomaly_flatline_min_readings') %}
{%- set flat_minimum_s = var('anomaly_flatline_min_minutes') * 60.0 %}
{%- set horizon_s = var('anomaly_baseline_hours') * 3600 %}
{%- set device_series = '(partition by device_id order by event_at, seq)' %}
{%- set metric_series = '(partition by device_id, metric order by event_at, seq)' %}

with

{{ anomaly_rebuild_scope() }}

metric_limits as (

    -- The limits in force now (gold describes readings with today's catalogue; silver judged them by theirs).
    select * from {{ ref('catalogue_metrics') }}
    where is_current and device_id is null

),

device_types as (

    select * from {{ ref('catalogue_device_types') }}
    where is_current

),

device_readings as (

    select
        *,
        {{ time_bucket('event_at', bucket_minutes) }} as bucket_number
    from readings

),

-- What the device sent, for its cadence and silences: its readings, also those silver rejected as
-- impossible values (the device did speak), each with the time since the one before.
device_messages as (

    select
        *,
        lag(event_at) over {{ device_series }} as previous_event_at,
        {{ time_bucket('event_at', bucket_minutes) }} as bucket_number,
        row_number() over (
            partition by device_id, {{ time_bucket('event_at', bucket_minutes) }} order by event_at, seq
        ) - 1 as earlier_in_bucket
    from (
        select
            device_id,
            device_type,
            site_id,
            event_date,
            event_at,
            seq,
            ingested_at,
            is_context_predecessor
        from readings

        union all

        select
            device_id,
            device_type,
            site_id,
            event_date,
            event_at,
            seq,
            ingested_at,
            false as is_context_predecessor
        from rejected_to_scan
        where copy_number = 1
    ) as messages

),

-- Long form: one row per reading and metric it has, with the metric's previous value (within the
-- baseline's horizon, so that a reading long before does not count) and its number in the metric's series.
metric_readings as (

    select
        *,
        case
            when previous_metric_at >= {{ dbt.dateadd('second', -1 * horizon_s, 'event_at') }}
                then previous_value_raw
        end as previous_value,
        case
            when previous_metric_at >= {{ dbt.dateadd('second', -1 * horizon_s, 'event_at') }}
                then previous_metric_at
        end as previous_value_at
    from (
        select
            *,
            lag(metric_value) over {{ metric_series }} as previous_value_raw,
            lag(event_at) over {{ metric_series }} as previous_metric_at,
            row_number() over {{ metric_series }} as metric_reading_number,
            row_number() over (
                partition by device_id, metric, bucket_number order by event_at, seq
            ) - 1 as earlier_in_bucket
        from (
            {%- for metric in metrics %}
            select
                device_id,
                device_type,
                site_id,
                event_date,
                event_at,
                seq,
                ingested_at,
                bucket_number,
                is_context_predecessor,
                cast('{{ metric }}' as varchar) as metric,
                {{ metric }} as metric_value
            from device_readings
            where {{ metric }} is not null
            {{ 'union all' if not loop.last }}
            {%- endfor %}
        ) as long_readings
    ) as with_previous

),

-- Runs of repeated values within a day: a run starts at a reading whose value differs from the previous
-- one of the same day; repeat_count is how many readings of the run came after its first.
metric_runs as (

    select
        *,
        row_number() over (
            partition by device_id, metric, event_date, run_number order by event_at, seq
        ) - 1 as repeat_count,
        min(event_at) over (partition by device_id, metric, event_date, run_number) as run_started_at
    from (
        select
            *,
            sum(case when is_repeat then 0 else 1 end) over (
                partition by device_id, metric, event_date
                order by event_at, seq
                rows between unbounded preceding and current row
            ) as run_number
        from (
            select
                *,
                coalesce(
                    metric_value = lag(metric_value) over (
                        partition by device_id, metric, event_date order by event_at, seq
                    ),
                    false
                ) as is_repeat
            from metric_readings
        ) as repeats
    ) as numbered

),

-- Per device, metric and bucket: what the baselines are made of.
metric_buckets as (

    select
        device_id,
        metric,
        bucket_number,
        count(*) as reading_count,
        min(metric_value) as min_value,
        max(metric_value) as max_value,
        -- The typical step from one reading to the next: the noise, blind to level shifts and drifts.
        {{ percentile('abs(metric_value - previous_value)', 0.5) }} as spread,
        max(repeat_count) as longest_repeat,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at
    from metric_runs
    group by device_id, metric, bucket_number

),

-- The trailing history of each bucket: the buckets of the baseline's horizon before it.
metric_baselines as (

    select
        current_bucket.device_id,
        current_bucket.metric,
        current_bucket.bucket_number,
        current_bucket.reading_count,
        current_bucket.spread,
        current_bucket.first_event_at,
        current_bucket.last_event_at,
        coalesce(sum(history.reading_count), 0) as history_count,
        count(history.bucket_number) as history_buckets,
        min(history.min_value) as history_min,
        max(history.max_value) as history_max,
        {{ percentile('history.spread', 0.5) }} as history_spread,
        coalesce({{ percentile('history.longest_repeat', 0.5) }}, 0) as history_usual_repeat
    from metric_buckets as current_bucket
    left join metric_buckets as history
        on
            current_bucket.device_id = history.device_id
            and current_bucket.metric = history.metric
            and history.bucket_number between current_bucket.bucket_number - {{ history_buckets }}
            and current_bucket.bucket_number - 1
    group by
        current_bucket.device_id,
        current_bucket.metric,
        current_bucket.bucket_number,
        current_bucket.reading_count,
        current_bucket.spread,
        current_bucket.first_event_at,
        current_bucket.last_event_at

),

-- The ten-minute neighbourhood of fast senders: sums over z-score buckets, joined back (a GROUP BY, no
-- sliding window); a reading's neighbourhood is its bucket and the two next to it, itself left out.
zscore_buckets as (

    select
        device_id,
        metric,
        {{ time_bucket('event_at', var('anomaly_zscore_window_minutes')) }} as zscore_bucket,
        count(*) as value_count,
        sum(metric_value) as value_sum,
        sum(metric_value * metric_value) as value_sum_sq
    from metric_readings
    group by device_id, metric, {{ time_bucket('event_at', var('anomaly_zscore_window_minutes')) }}

),

zscore_neighbourhoods as (

    select
        device_id,
        metric,
        zscore_bucket,
        sum(value_count) as value_count,
        sum(value_sum) as value_sum,
        sum(value_sum_sq) as value_sum_sq
    from (
        {%- for shift in [-1, 0, 1] %}
        select
            device_id,
            metric,
            zscore_bucket + {{ shift }} as zscore_bucket,
            value_count,
            value_sum,
            value_sum_sq
        from zscore_buckets
        {{ 'union all' if not loop.last }}
        {%- endfor %}
    ) as shifted
    group by device_id, metric, zscore_bucket

),

limits as (

    select
        metric_limits.*,
        device_types.reporting_interval_s
    from metric_limits
    inner join device_types
        on metric_limits.device_type = device_types.device_type

),

-- Per reading and metric, every score; 1 is the flagging threshold of the learned ones.
scored_readings as (

    select
        metric_runs.device_id,
        metric_runs.device_type,
        metric_runs.site_id,
        metric_runs.metric,
        metric_runs.event_date,
        metric_runs.event_at,
        metric_runs.seq,
        metric_runs.ingested_at,
        metric_runs.metric_value,
        metric_runs.metric_reading_number,
        metric_runs.run_number,
        metric_runs.run_started_at,
        metric_runs.repeat_count,
        (
            metric_baselines.history_count >= {{ warmup }}
            and metric_baselines.history_buckets >= {{ warmup_buckets }}
        ) as is_warm,
        metric_baselines.history_count + metric_runs.earlier_in_bucket >= {{ short_warmup }} as is_settled,
        metric_baselines.history_usual_repeat,
        -- How far outside the trailing history's range, as a share of its width, over the margin.
        greatest(
            metric_runs.metric_value - metric_baselines.history_max,
            metric_baselines.history_min - metric_runs.metric_value,
            0
        ) / greatest(
            metric_baselines.history_max - metric_baselines.history_min,
            1e-9 + 1e-6 * abs(metric_baselines.history_max)
        ) / cast({{ margin }} as double) as range_score,
        -- |z| in the ten-minute neighbourhood, over the threshold; only with enough neighbours.
        case
            when zscore_neighbourhoods.value_count - 1 >= {{ var('anomaly_zscore_min_readings') }}
                then {{ zscore(
                    'metric_runs.metric_value',
                    '(zscore_neighbourhoods.value_count - 1)',
                    '(zscore_neighbourhoods.value_sum - metric_runs.metric_value)',
                    '(zscore_neighbourhoods.value_sum_sq - metric_runs.metric_value * metric_runs.metric_value)',
                    'coalesce(0.001 * (limits.valid_max - limits.valid_min), 1e-9)'
                ) }} / cast({{ z_threshold }} as double)
        end as neighbourhood_score,
        case
            when metric_runs.metric_value > limits.alert_max
                then (metric_runs.metric_value - limits.alert_max) / nullif(limits.valid_max - limits.alert_max, 0)
            when metric_runs.metric_value < limits.alert_min
                then (limits.alert_min - metric_runs.metric_value) / nullif(limits.alert_min - limits.valid_min, 0)
        end as threshold_score,
        abs(metric_runs.metric_value - metric_runs.previous_value) / (
            limits.max_jump
            * greatest(
                1.0,
                {{ seconds_between('metric_runs.previous_value_at', 'metric_runs.event_at') }}
                / limits.reporting_interval_s
            )
        ) as jump_score
    from metric_runs
    inner join metric_baselines
        on
            metric_runs.device_id = metric_baselines.device_id
            and metric_runs.metric = metric_baselines.metric
            and metric_runs.bucket_number = metric_baselines.bucket_number
    inner join zscore_neighbourhoods
        on
            metric_runs.device_id = zscore_neighbourhoods.device_id
            and metric_runs.metric = zscore_neighbourhoods.metric
            and {{ time_bucket('metric_runs.event_at', var('anomaly_zscore_window_minutes')) }}
            = zscore_neighbourhoods.zscore_bucket
    left join limits
        on
            metric_runs.device_type = limits.device_type
            and metric_runs.metric = limits.metric
    where not metric_runs.is_context_predecessor

),

-- Flagged readings (few) as points: (reading, metric, kind) with the score that flags it.
flagged_points as (

    select *
    from (
        select
            device_id,
            device_type,
            site_id,
            metric,
            event_date,
            event_at,
            seq,
            ingested_at,
            metric_value,
            metric_reading_number,
            cast('outlier' as varchar) as anomaly_kind,
            greatest(
                case when is_warm then coalesce(range_score, 0) else 0 end,
                case when is_settled then coalesce(neighbourhood_score, 0) else 0 end
            ) as point_score
        from scored_readings
        where is_settled

        union all

        select
            device_id,
            device_type,
            site_id,
            metric,
            event_date,
            event_at,
            seq,
            ingested_at,
            metric_value,
            metric_reading_number,
            cast('threshold_breach' as varchar) as anomaly_kind,
            threshold_score as point_score
        from scored_readings

        union all

        select
            device_id,
            device_type,
            site_id,
            metric,
            event_date,
            event_at,
            seq,
            ingested_at,
            metric_value,
            metric_reading_number,
            cast('rate_of_change' as varchar) as anomaly_kind,
            jump_score as point_score
        from scored_readings
    ) as points
    where
        (anomaly_kind = 'outlier' and point_score >= 1)
        or (anomaly_kind = 'threshold_breach' and point_score > 0)
        or (anomaly_kind = 'rate_of_change' and point_score > 1)

),

-- Runs of consecutive flagged readings of one metric and kind on one day.
point_runs as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        anomaly_kind,
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
            metric_reading_number - row_number() over (
                partition by device_id, metric, anomaly_kind, event_date order by event_at, seq
            ) as run_number
        from flagged_points
    ) as numbered_points
    group by device_id, device_type, site_id, metric, anomaly_kind, event_date, run_number

),

-- Outlier runs: a few readings are an outlier, more a level shift (a new level, or a drift leaving the
-- range it had).
learned_runs as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        case
            when reading_count <= {{ var('anomaly_outlier_max_readings') }} then 'zscore_outlier'
            else 'level_shift'
        end as anomaly_kind,
        event_date,
        started_at,
        ended_at,
        peak_value,
        score,
        reading_count,
        last_ingested_at
    from point_runs
    where anomaly_kind = 'outlier'

    union all

    -- variance_change: a bucket whose typical step between readings is var anomaly_variance_ratio times the
    -- usual one, or that fraction of it (the bucket's readings, with enough of them to tell).
    select
        metric_baselines.device_id,
        max(scored_readings.device_type) as device_type,
        max(scored_readings.site_id) as site_id,
        metric_baselines.metric,
        'variance_change' as anomaly_kind,
        max(scored_readings.event_date) as event_date,
        metric_baselines.first_event_at as started_at,
        metric_baselines.last_event_at as ended_at,
        max(scored_readings.metric_value) as peak_value,
        max(metric_baselines.variance_score) as score,
        count(*) as reading_count,
        max(scored_readings.ingested_at) as last_ingested_at
    from (
        select
            *,
            greatest(
                (spread + spread_floor) / (history_spread + spread_floor),
                (history_spread + spread_floor) / (spread + spread_floor)
            ) / cast({{ var('anomaly_variance_ratio') }} as double) as variance_score
        from (
            select
                *,
                1e-9 + 0.01 * (history_max - history_min) as spread_floor
            from metric_baselines
            where
                history_count >= {{ warmup }}
                and history_buckets >= {{ warmup_buckets }}
                and reading_count >= {{ var('anomaly_variance_min_readings') }}
        ) as with_floor
    ) as metric_baselines
    inner join scored_readings
        on
            metric_baselines.device_id = scored_readings.device_id
            and metric_baselines.metric = scored_readings.metric
            and scored_readings.event_at between metric_baselines.first_event_at and metric_baselines.last_event_at
    where metric_baselines.variance_score >= 1
    group by
        metric_baselines.device_id,
        metric_baselines.metric,
        metric_baselines.bucket_number,
        metric_baselines.first_event_at,
        metric_baselines.last_event_at

),

-- Episodes, not points: runs of one kind less than var anomaly_episode_merge_minutes apart on one day
-- are one window (the cooldown before a new one).
learned_episodes as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        anomaly_kind,
        event_date,
        min(started_at) as started_at,
        max(ended_at) as ended_at,
        max_by(peak_value, score) as peak_value,
        max(score) as score,
        cast(sum(reading_count) as bigint) as reading_count,
        max(last_ingested_at) as last_ingested_at
    from (
        select
            *,
            sum(case when is_continued then 0 else 1 end) over (
                partition by device_id, metric, anomaly_kind, event_date
                order by started_at
                rows between unbounded preceding and current row
            ) as episode_number
        from (
            select
                *,
                coalesce(
                    {{ seconds_between(
                        'lag(ended_at) over (partition by device_id, metric, anomaly_kind, event_date order by started_at)',
                        'started_at'
                    ) }} <= {{ merge_s }},
                    false
                ) as is_continued
            from learned_runs
        ) as runs
    ) as numbered_runs
    group by device_id, device_type, site_id, metric, anomaly_kind, event_date, episode_number

),

-- flatline: a run of one value, within one day, of at least var anomaly_flatline_min_readings readings
-- and var anomaly_flatline_min_minutes, more than var anomaly_flatline_repeat_factor times as long as the
-- usual (median) longest run of a bucket of the trailing history (a sensor whose readings often repeat is
-- not stuck when they do; one earlier stuck spell does not hide the next).
flatlines as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        'flatline' as anomaly_kind,
        event_date,
        min(run_started_at) as started_at,
        max(event_at) as ended_at,
        max(metric_value) as peak_value,
        {{ seconds_between('min(run_started_at)', 'max(event_at)') }} / cast({{ flat_minimum_s }} as double) as score,
        max(repeat_count) + 1 as reading_count,
        max(ingested_at) as last_ingested_at
    from scored_readings
    where
        is_settled
        and repeat_count >= {{ flat_readings - 1 }}
        and repeat_count > {{ var('anomaly_flatline_repeat_factor') }} * history_usual_repeat
    group by device_id, device_type, site_id, metric, event_date, run_number
    having {{ seconds_between('min(run_started_at)', 'max(event_at)') }} >= {{ flat_minimum_s }}

),

-- data_gap cadence: per device and bucket, the longest interval between readings; a device's cadence is
-- the median of those over its trailing history (robust to the silences themselves), or, with fewer than
-- var anomaly_gap_min_buckets buckets of history, its type's silence_after_s (the prior).
device_buckets as (

    select
        device_id,
        bucket_number,
        count(*) as reading_count,
        max({{ seconds_between('previous_event_at', 'event_at') }}) as longest_interval_s
    from device_messages
    group by device_id, bucket_number

),

device_cadences as (

    select
        current_bucket.device_id,
        current_bucket.bucket_number,
        count(history.bucket_number) as history_buckets,
        coalesce(sum(history.reading_count), 0) as history_count,
        {{ percentile('history.longest_interval_s', 0.5) }} as usual_longest_interval_s
    from device_buckets as current_bucket
    left join device_buckets as history
        on
            current_bucket.device_id = history.device_id
            and history.bucket_number between current_bucket.bucket_number - {{ history_buckets }}
            and current_bucket.bucket_number - 1
    group by current_bucket.device_id, current_bucket.bucket_number

),

-- data_gap: the device sent nothing for var anomaly_gap_factor times its cadence: one window per silence,
-- from the last reading before it to the first after it, owned by the day of the latter. After the
-- short warm-up, or whenever the silence outlasts the whole trailing history.
data_gaps as (

    select
        device_id,
        device_type,
        site_id,
        cast(null as varchar) as metric,
        'data_gap' as anomaly_kind,
        event_date,
        previous_event_at as started_at,
        event_at as ended_at,
        cast(null as double) as peak_value,
        silence_s / expected_silence_s as score,
        cast(0 as bigint) as reading_count,
        ingested_at as last_ingested_at
    from (
        select
            device_messages.*,
            device_cadences.history_count,
            {{ seconds_between('device_messages.previous_event_at', 'device_messages.event_at') }} as silence_s,
            case
                when device_cadences.history_buckets >= {{ var('anomaly_gap_min_buckets') }}
                    then {{ var('anomaly_gap_factor') }} * device_cadences.usual_longest_interval_s
                else device_types.silence_after_s
            end as expected_silence_s
        from device_messages
        inner join device_cadences
            on
                device_messages.device_id = device_cadences.device_id
                and device_messages.bucket_number = device_cadences.bucket_number
        inner join device_types
            on device_messages.device_type = device_types.device_type
        where not device_messages.is_context_predecessor
    ) as silences
    where
        silence_s > expected_silence_s
        and (history_count + earlier_in_bucket >= {{ short_warmup }} or silence_s >= {{ horizon_s }})

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
        limits.valid_min,
        limits.valid_max,
        limits.reporting_interval_s
    from rejected_to_scan
    inner join limits
        on
            rejected_to_scan.device_type = limits.device_type
            and rejected_to_scan.rejected_metric = limits.metric
    where rejected_to_scan.copy_number = 1

),

out_of_range_windows as (

    select
        device_id,
        device_type,
        site_id,
        metric,
        'out_of_range' as anomaly_kind,
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
        from (
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
        ) as scored
    ) as numbered
    group by device_id, device_type, site_id, metric, event_date, window_number

),

detected_windows as (

    select * from point_runs
    where anomaly_kind in ('threshold_breach', 'rate_of_change')
    union all
    select * from learned_episodes
    union all
    select * from flatlines
    union all
    select * from data_gaps
    union all
    select * from out_of_range_windows

),

-- Scores rounded to 6 decimals: a window computed again from another set of readings (a later
-- incremental build) sums the same floating-point values in another order, and must come out the same.
-- Severity of the learned kinds from strength and duration: a strong or long episode is critical.
all_windows as (

    select
        *,
        case anomaly_kind
            when 'threshold_breach' then {{ severity('score', 0.1, 0.5) }}
            when 'rate_of_change' then {{ severity('score', 1, 3) }}
            when 'data_gap' then {{ severity('score', 1, 6) }}
            when 'out_of_range' then {{ severity('score', 0, 0.25) }}
            when 'flatline' then {{ severity('score', 1, 15) }}
            else
                case
                    when score >= 4 or (score >= 2 and duration_s >= 3600) then 'critical'
                    when score >= 2 or duration_s >= 3600 then 'warning'
                    else 'info'
                end
        end as severity
    from (
        select
            device_id,
            device_type,
            site_id,
            metric,
            cast(anomaly_kind as varchar) as anomaly_kind,
            event_date,
            started_at,
            ended_at,
            peak_value,
            round(score, 6) as score,
            reading_count,
            last_ingested_at,
            {{ seconds_between('started_at', 'ended_at') }} as duration_s
        from detected_windows
    ) as rounded

),

-- The windows of the rebuilt device-days (an incremental build reads their context too).
windows_to_keep as (

    select all_windows.*
    from all_windows
    inner join rebuild_device_days
        on
            all_windows.device_id = rebuild_device_days.device_id
            and all_windows.event_date = rebuild_device_days.event_date

),

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
    from rebuild_device_days
    {%- endif %}

)

select * from final

{#- The bronze accelerometer rows accelerometer_trusted does not keep, each with its reason. -#}
-- every column of accelerometer_classified, whose rejected half this is
select *  -- noqa: AM04
from {{ ref('accelerometer_classified') }}
where rejection_reason is not null

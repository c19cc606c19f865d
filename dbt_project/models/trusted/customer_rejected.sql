{#- The bronze customer rows customer_trusted does not keep, each with its reason (customer_classified). -#}
-- every column of customer_classified, whose rejected half this is
select *  -- noqa: AM04
from {{ ref('customer_classified') }}
where rejection_reason is not null

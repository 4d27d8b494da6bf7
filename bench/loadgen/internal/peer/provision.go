package peer

import (
	"context"
	"sync"
	"sync/atomic"
)

// ProvisionAll calls register for indexes 0..n-1, concurrency at a time, reporting each
// success to progress (when set). The first error cancels the rest and is returned.
func ProvisionAll(
	ctx context.Context, n, concurrency int, progress func(done int),
	register func(ctx context.Context, i int) (User, error),
) ([]User, error) {
	users := make([]User, n)
	var (
		wg       sync.WaitGroup
		done     atomic.Int64
		firstErr error
		errOnce  sync.Once
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	for range max(concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				u, err := register(ctx, i)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					continue
				}
				users[i] = u
				if progress != nil {
					progress(int(done.Add(1)))
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return users, ctx.Err()
}

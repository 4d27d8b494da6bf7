package scenario

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// residentKB sums VmRSS of the server's processes, from /proc.
func residentKB(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		file, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, fmt.Errorf("reading server memory (is --server-pid %d right?): %w", pid, err)
		}
		scanner := bufio.NewScanner(file)
		for scanner.Scan() {
			line := scanner.Text()
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err == nil {
					total += kb
				}
			}
		}
		file.Close()
	}
	return total, nil
}
